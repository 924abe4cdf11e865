"""LoFTR training, evaluation and inference built on kornia's LoFTR modules.

The model is ``kornia.feature.LoFTR`` itself (same sub-modules, same state-dict names as the
official checkpoints); this package adds what training needs: a forward pass that shares one data
dict between the sub-modules, depth-based supervision, the losses, a MegaDepth-format data
pipeline, an optimal-transport matcher, a Lightning module, and relative-pose evaluation.
"""

# kornia's released weights, usable as ``init_weights`` / ``--weights`` (downloaded once)
PRETRAINED = ("outdoor", "indoor", "indoor_new")

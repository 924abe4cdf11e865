"""LoFTR model: kornia's modules, configured from matchforge options, with a forward pass that trains.

``build_model`` returns a plain ``kornia.feature.LoFTR(pretrained=None, config=...)``, so its state
dict has exactly the names of kornia and of the official checkpoints. ``forward`` runs the same
sub-modules as kornia's ``LoFTR.forward`` but on one shared ``data`` dict, as the official code does:
the coarse matcher then sees the coarse padding masks, the image scales and the ground-truth
ids (``spv_*``) that its training branch pads the fine level with, and the caller gets back
``conf_matrix``, ``expec_f`` and the match ids that the losses need.

Image conventions: ``image0/1`` (N, 1, H, W) grayscale in [0, 1], H and W multiples of 8;
``mask0/1`` (N, H/8, W/8) bool, False on padding; ``scale0/1`` (N, 2) = original size / resized
size (x, y). Output keypoints ``mkpts0_f/mkpts1_f`` are pixels of the *original* images, in the
official frame (coarse cell (x, y) sits on pixel 8 * (x, y) * scale).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch
from kornia.feature import LoFTR
from kornia.feature.loftr.loftr import default_cfg

from matchforge.loftr.sinkhorn import install_into_kornia

MATCH_TYPES = {"dual_softmax": "dual_softmax", "ds": "dual_softmax", "sinkhorn": "sinkhorn", "ot": "sinkhorn"}


def kornia_config(model_conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """kornia LoFTR config from matchforge ``model`` options (missing keys keep kornia's defaults).

    Options: ``match_type`` (dual_softmax|sinkhorn, aliases ds|ot), ``temp_bug_fix``,
    ``coarse_layers`` (number of self+cross pairs, 4 upstream), ``block_dims`` ([128, 196, 256]
    upstream; the coarse/fine transformer widths follow the last/first entry), ``initial_dim``,
    ``nhead``, ``thr``, ``border_rm``, ``dsmax_temperature``, ``skh_iters``,
    ``skh_init_bin_score``, ``skh_prefilter``, ``sparse_spvs``, ``train_coarse_percent``,
    ``train_pad_num_gt_min``.
    """
    conf = dict(model_conf or {})
    cfg = copy.deepcopy(default_cfg)
    mc = cfg["match_coarse"]
    mc["match_type"] = MATCH_TYPES[conf.get("match_type", "dual_softmax")]
    for key in ("thr", "border_rm", "dsmax_temperature", "skh_iters", "skh_init_bin_score", "skh_prefilter",
                "train_coarse_percent", "train_pad_num_gt_min"):
        if conf.get(key) is not None:
            mc[key] = conf[key]
    mc["sparse_spvs"] = bool(conf.get("sparse_spvs", False))
    if conf.get("temp_bug_fix") is not None:
        cfg["coarse"]["temp_bug_fix"] = bool(conf["temp_bug_fix"])
    if conf.get("block_dims") is not None:
        dims = list(conf["block_dims"])
        cfg["resnetfpn"]["block_dims"] = dims
        cfg["coarse"]["d_model"] = cfg["coarse"]["d_ffn"] = dims[-1]
        cfg["fine"]["d_model"] = cfg["fine"]["d_ffn"] = dims[0]
    if conf.get("initial_dim") is not None:
        cfg["resnetfpn"]["initial_dim"] = int(conf["initial_dim"])
    if conf.get("coarse_layers") is not None:
        cfg["coarse"]["layer_names"] = ["self", "cross"] * int(conf["coarse_layers"])
    if conf.get("nhead") is not None:
        cfg["coarse"]["nhead"] = cfg["fine"]["nhead"] = int(conf["nhead"])
    return cfg


def build_model(model_conf: Mapping[str, Any] | None = None) -> LoFTR:
    """A randomly initialised kornia LoFTR (train mode) for ``model_conf`` (see :func:`kornia_config`)."""
    cfg = kornia_config(model_conf)
    if cfg["match_coarse"]["match_type"] == "sinkhorn":
        install_into_kornia()
    return LoFTR(pretrained=None, config=cfg)


def forward(model: LoFTR, data: dict[str, Any]) -> dict[str, Any]:
    """Run LoFTR on ``data`` in place (train or eval mode, as the model is) and return ``data``.

    In train mode ``data`` must already hold the coarse supervision (``spv_b_ids``, ...), see
    :func:`matchforge.loftr.supervision.coarse_supervision`. Adds ``conf_matrix``, ``b_ids``,
    ``i_ids``, ``j_ids``, ``gt_mask``, ``mkpts0_c/1_c``, ``mconf``, ``m_bids``, ``expec_f``,
    ``mkpts0_f/1_f``.
    """
    stride_c, stride_f = model.config["resolution"]
    img0, img1 = data["image0"], data["image1"]
    n = img0.size(0)
    data.update(bs=n, stride_c=stride_c, stride_f=stride_f, hw0_i=img0.shape[2:], hw1_i=img1.shape[2:])
    if img0.shape[2:] == img1.shape[2:]:
        feat_c, feat_f = model.backbone(torch.cat([img0, img1], 0))
        (feat_c0, feat_c1), (feat_f0, feat_f1) = feat_c.split(n), feat_f.split(n)
    else:
        (feat_c0, feat_f0), (feat_c1, feat_f1) = model.backbone(img0), model.backbone(img1)
    data.update(hw0_c=feat_c0.shape[2:], hw1_c=feat_c1.shape[2:], hw0_f=feat_f0.shape[2:], hw1_f=feat_f1.shape[2:])

    feat_c0 = model.pos_encoding(feat_c0).flatten(2).transpose(1, 2).contiguous()
    feat_c1 = model.pos_encoding(feat_c1).flatten(2).transpose(1, 2).contiguous()
    mask_c0 = data["mask0"].flatten(-2) if "mask0" in data else None
    mask_c1 = data["mask1"].flatten(-2) if "mask1" in data else None
    feat_c0, feat_c1 = model.loftr_coarse(feat_c0, feat_c1, mask_c0, mask_c1)

    model.coarse_matching(feat_c0, feat_c1, data, mask_c0=mask_c0, mask_c1=mask_c1)

    feat_f0_w, feat_f1_w = model.fine_preprocess(feat_f0, feat_f1, feat_c0, feat_c1, data)
    if feat_f0_w.size(0) != 0:
        feat_f0_w, feat_f1_w = model.loftr_fine(feat_f0_w, feat_f1_w)
    model.fine_matching(feat_f0_w, feat_f1_w, data)
    return data


def export_state_dict(model: LoFTR) -> dict[str, torch.Tensor]:
    """CPU copy of the model's state dict, with kornia's/official names (no ``matcher.`` prefix)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


PRETRAINED = ("outdoor", "indoor", "indoor_new")


def load_weights(weights: str, model_conf: Mapping[str, Any] | None = None, device: str | torch.device = "cpu") -> LoFTR:
    """An eval-mode LoFTR from a local weights file or a kornia pretrained name (downloads; needs network).

    A local file may be an exported state dict (``weights.pt``), an official Lightning checkpoint
    (``state_dict`` with ``matcher.`` prefixes) or one of our training checkpoints (whose options are
    read from it); otherwise the architecture comes from ``model_conf``, and OT is recognised by its
    ``coarse_matching.bin_score``.
    """
    from pathlib import Path

    from matchforge.errors import MatchforgeError

    if weights in PRETRAINED and not Path(weights).exists():
        try:
            return LoFTR(pretrained=weights).to(device).eval()
        except Exception as err:  # noqa: BLE001 - offline or blocked download
            raise MatchforgeError(f"could not download kornia's pretrained LoFTR '{weights}' ({err.__class__.__name__}: {err})",
                                  fix="run once with network access (the weights are cached by torch.hub), or pass a local --weights file") from None
    path = Path(weights)
    if not path.is_file():
        raise MatchforgeError("LoFTR weights not found", path=path,
                              fix=f"pass a file written by `matchforge loftr-train` (weights.pt) or one of {', '.join(PRETRAINED)}")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    conf = dict(model_conf or {})
    if isinstance(blob, dict) and isinstance(blob.get("hyper_parameters"), dict) and "conf" in blob["hyper_parameters"]:
        conf = {**blob["hyper_parameters"]["conf"], **{k: v for k, v in conf.items() if k in ("thr",)}}  # our Lightning checkpoint
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
    state = {k.removeprefix("matcher."): v for k, v in state.items() if not k.startswith("loss.")}
    if "coarse_matching.bin_score" in state:
        conf["match_type"] = "sinkhorn"
    model = build_model(conf)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise MatchforgeError(f"weights do not fit the LoFTR architecture of the config: {str(err).splitlines()[0]}", path=path,
                              fix="use the model options the weights were trained with (matchforge exports store them)") from None
    return model.to(device).eval()

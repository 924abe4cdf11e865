"""MegaDepth-format datasets: scene-info files, splits, layout, LoFTR data config, and index readers."""

"""Evaluation code shared by every matcher family (LoFTR, PoSFeat, baselines)."""

"""One training engine for every model family (LoFTR, PoSFeat, shift/focal): a family supplies a
LightningModule and its data; :func:`matchforge.training.engine.fit` owns the Trainer, the
checkpoints, the resume policy and the signal handling (see ``docs/training.md``)."""

# dataset rules: see issue / docs/dataset.md (filled in by the stage's owner)

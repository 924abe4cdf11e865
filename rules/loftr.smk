# loftr rules: see issue / docs/loftr.md (filled in by the stage's owner)

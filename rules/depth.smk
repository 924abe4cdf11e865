# depth rules: see issue / docs/depth.md (filled in by the stage's owner)

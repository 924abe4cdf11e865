# posfeat rules: see issue / docs/posfeat.md (filled in by the stage's owner)

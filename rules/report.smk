# report rules: see issue / docs/report.md (filled in by the stage's owner)

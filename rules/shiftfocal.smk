# shiftfocal rules: see issue / docs/shiftfocal.md (filled in by the stage's owner)

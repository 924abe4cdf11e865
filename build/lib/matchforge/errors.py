"""One exception type for input problems, so every stage reports them the same way."""

from __future__ import annotations

from pathlib import Path


class MatchforgeError(RuntimeError):
    """A problem with the user's input: says which scene, which file, what is wrong and how to fix it.

    The CLI prints the message without a traceback and exits with status 2, so a Snakemake log
    ends with a sentence a person can act on.
    """

    def __init__(self, cause: str, *, fix: str, scene: str | None = None, path: str | Path | None = None):
        self.cause, self.fix, self.scene, self.path = cause, fix, scene, path
        where = []
        if scene is not None:
            where.append(f"scene '{scene}'")
        if path is not None:
            where.append(f"file '{path}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(f"{prefix}{cause}. Fix: {fix}")

"""matchforge: photos -> SfM -> aligned depth -> MegaDepth-format datasets -> trained local-feature models.

Every stage is a module with a ``main(conf, ...)`` function (importable, testable without Snakemake)
and a command of the ``matchforge`` CLI (see :mod:`matchforge.cli`).
"""

__version__ = "0.1.0"

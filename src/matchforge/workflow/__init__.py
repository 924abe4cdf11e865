"""The workflow's glue: everything the rule files ask of the config, as plain functions of a validated config.

``rules/*.smk`` hold rule declarations only; each input function, param builder, resource function and target
list they name is a method of :class:`Workflow` (scene-level helpers, targets, cluster placement) or of one of its
parts, the glue of one stage or family, which lives beside that family's code (``wf.sfm``, ``wf.depth``,
``wf.dataset``, ``wf.localization``, ``wf.loftr``, ``wf.posfeat``, ``wf.shiftfocal``: :mod:`matchforge.sfm.glue`,
..., :mod:`matchforge.loftr.glue`, ...). It is built once by ``rules/common.smk`` from Snakemake's ``config`` by
:func:`prepare` (which parses it once into its typed form, every default from the models)::

    wf = prepare(config, workflow.configfiles, checkpoints)   # matchforge.workflow.glue.prepare
    rule loftr_train:
        input: unpack(wf.loftr.train_inputs)
        params: conf=wf.loftr.train_params

Methods taking ``wc`` are called by Snakemake with a job's wildcards (``wc.scene``, ``wc.run``, ...); those taking
``wc, input`` also get its input files. Paths are relative to the working directory, as the rules' own.
"""

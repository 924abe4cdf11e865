"""The workflow's glue: everything the rule files ask of the config, as plain functions of a validated config.

``rules/*.smk`` hold rule declarations only; each input function, param builder, resource function and target
list they name is a method of :class:`Workflow`, built once by ``rules/common.smk`` from Snakemake's ``config``
by :func:`prepare` (which parses it once into its typed form, every default from the models)::

    wf = prepare(config, workflow.configfiles, checkpoints)
    rule loftr_train:
        input: unpack(wf.loftr_train_inputs)
        params: conf=wf.loftr_train_params

Methods taking ``wc`` are called by Snakemake with a job's wildcards (``wc.scene``, ``wc.run``, ...); those taking
``wc, input`` also get its input files. Paths are relative to the working directory, as the rules' own.
"""

from matchforge.workflow.glue import Workflow, command_on_path, one_of, prepare, present

__all__ = ["Workflow", "command_on_path", "one_of", "prepare", "present"]

# matchforge: photos -> SfM -> aligned depth -> MegaDepth-format datasets -> trained models.
# Run: snakemake --cores 2            (demo scene, CPU; the default profile is profiles/default)
#      snakemake --cores 16 --resources gpu=4
#      snakemake --workflow-profile slurm
from snakemake.utils import min_version

min_version("9.1")


configfile: "config/config.yaml"


envvars:
    "PATH",  # rules/common.smk puts the `matchforge` command of the Python that runs Snakemake first on it


report: "workflow/report/workflow.rst"


include: "rules/common.smk"


wildcard_constraints:
    scene=wf.constraint("scene"),


include: "rules/sfm.smk"
include: "rules/depth.smk"
include: "rules/dataset.smk"
include: "rules/loftr.smk"
include: "rules/posfeat.smk"
include: "rules/shiftfocal.smk"
include: "rules/report.smk"


wf.cluster_resources(workflow.rules)  # SLURM account/partition/signal of every rule, from its resources


rule all:
    input:
        wf.all_targets,
    default_target: True
    localrule: True

# SfM: photos -> undistorted PINHOLE COLMAP model. A checkpoint, because later stages fan out over
# the registered images, whose number is known only afterwards.


checkpoint sfm:
    wildcard_constraints:
        scene=one_of(SFM_SCENES),
    input:
        unpack(sfm_inputs),
    output:
        sparse=directory("results/{scene}/sfm/sparse"),
        images=directory("results/{scene}/sfm/images"),
        stats="results/{scene}/sfm/stats.json",
    params:
        photos=scene_photos,
        conf=stage_params("sfm"),
        images=scene_images_dir,
        existing=sfm_existing,
        work="results/{scene}/sfm/work",
    log:
        "logs/{scene}/sfm.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/{scene}/sfm.tsv"
    threads: 2  # fits a small node; more with --set-threads sfm=16 (docs/slurm.md; capped by --cores locally)
    resources:
        mem_mb=scene_resources("sfm", "mem_mb"),  # grow with the photo count (docs/slurm.md)
        runtime=scene_resources("sfm", "runtime"),
    shell:
        "matchforge sfm --scene {wildcards.scene} --images {params.images:q} --out results/{wildcards.scene}/sfm"
        " --conf {params.conf:q} --existing {params.existing:q} --num-threads {threads} > {log:q} 2>&1"


TARGETS["sfm"] = lambda: expand("results/{scene}/sfm/stats.json", scene=SFM_SCENES)

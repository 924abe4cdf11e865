# SfM: photos -> undistorted PINHOLE COLMAP model. A checkpoint, because later stages fan out over
# the registered images, whose number is known only afterwards.


checkpoint sfm:
    wildcard_constraints:
        scene=wf.constraint("sfm_scene"),
    input:
        unpack(wf.sfm.inputs),
    output:
        sparse=directory(A.SFM_SPARSE),
        images=directory(A.SFM_IMAGES),
        stats=A.SFM_STATS,
    params:
        photos=wf.scene_photos,
        conf=wf.stage_params("sfm"),
        images=wf.scene_images_dir,
        existing=wf.sfm.existing,
        work=A.SFM_WORK,
    log:
        "logs/{scene}/sfm.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/{scene}/sfm.tsv"
    threads: 2  # fits a small node; more with --set-threads sfm=16 (docs/slurm.md; capped by --cores locally)
    resources:
        mem_mb=wf.scene_resources("sfm", "mem_mb"),  # grow with the photo count (docs/slurm.md)
        runtime=wf.scene_resources("sfm", "runtime"),
    shell:
        f"matchforge sfm --scene {{wildcards.scene}} --images {{params.images:q}} --out {A.SFM.shell()}"
        " --conf {params.conf:q} --existing {params.existing:q} --num-threads {threads} > {log:q} 2>&1"


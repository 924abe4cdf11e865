# SfM: photos -> undistorted PINHOLE COLMAP model. A checkpoint, because later stages fan out over
# the registered images, whose number is known only afterwards.


def sfm_inputs(wc):
    scene = config["scenes"][wc.scene]
    inputs = {"photos": scene_photos(wc)}
    colmap = scene.get("colmap") or {}
    inputs.update({k: colmap[k] for k in ("sparse", "database") if colmap.get(k)})
    return inputs


def sfm_existing(wc):
    return to_json(config["scenes"][wc.scene].get("colmap") or {})


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
        mem_mb=8000,
    shell:
        "{MF} sfm --scene {wildcards.scene} --images {params.images:q} --out results/{wildcards.scene}/sfm"
        " --conf {params.conf:q} --existing {params.existing:q} --num-threads {threads} > {log:q} 2>&1"


def sfm_outputs(scene):
    """Outputs of the SfM checkpoint for `scene` (raises IncompleteCheckpointException until it ran)."""
    return checkpoints.sfm.get(scene=scene).output


def registered_stems(scene):
    """Stems of the undistorted images of `scene`, known once its SfM checkpoint has run."""
    images = Path(sfm_outputs(scene).images)
    return sorted(p.stem for p in images.iterdir() if p.is_file())


TARGETS["sfm"] = lambda: expand("results/{scene}/sfm/stats.json", scene=SFM_SCENES)

# Datasets (issue 4, docs/dataset.md): per scene, MegaDepth scene-info files bucketed by D2-Net overlap;
# per dataset, splits + MegaDepth layout (links) + LoFTR data config + dataset.json.

wildcard_constraints:
    dataset=wf.constraint("dataset"),


rule scene_info:
    input:
        sparse=A.SFM_SPARSE,
        images=A.SFM_IMAGES,
        depth=A.DEPTH_H5,
    output:
        report(directory(A.SCENE_INFO), patterns=["{name}.png", "{name}.csv"], category="Scene info",
               subcategory="{scene}", caption="../workflow/report/scene_info.rst"),
    params:
        conf=wf.dataset.scene_info_params,
    log:
        "logs/{scene}/scene_info.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/{scene}/scene_info.tsv"
    resources:
        mem_mb=wf.scene_resources("scene_info", "mem_mb"),
        runtime=wf.scene_resources("scene_info", "runtime"),
    shell:
        "matchforge scene-info --scene {wildcards.scene} --sparse {input.sparse:q} --images {input.images:q}"
        " --depth {input.depth:q} --out {output:q} --conf {params.conf:q} > {log:q} 2>&1"


rule dataset_inputs:
    """The dataset's scenes and options as files: they are read by the dataset job, not passed on its command line."""
    output:
        scenes=A.DATASET_SCENES,
        conf=A.DATASET_CONF,
    params:
        scenes=wf.dataset.listing,
        conf=wf.dataset.conf,
    log:
        "logs/datasets/{dataset}_inputs.log",
    localrule: True
    run:
        wf.write_dataset_inputs(output, params, log[0])


rule dataset:
    input:
        unpack(wf.dataset.inputs),
        listing=rules.dataset_inputs.output.scenes,
        conf=rules.dataset_inputs.output.conf,
    output:
        json=A.DATASET,
        loftr_config=A.DATASET_LOFTR_CONFIG,
        index=directory(A.DATASET_INDEX),
        train=directory(A.DATASET_TRAIN),
        test=directory(A.DATASET_TEST),
    params:
        out=wf.output_folder("json"),
    log:
        "logs/datasets/{dataset}.log",
    conda:
        "../envs/sfm.yaml"
    localrule: True
    shell:
        "matchforge dataset --dataset {wildcards.dataset} --inputs {input.listing:q} --out {params.out:q}"
        " --conf {input.conf:q} > {log:q} 2>&1"


rule dataset_gluefactory:
    input:
        A.DATASET,
    output:
        directory(A.DATASET_GLUEFACTORY),
    log:
        "logs/datasets/{dataset}_gluefactory.log",
    conda:
        "../envs/sfm.yaml"
    localrule: True
    shell:
        "matchforge export-gluefactory --dataset {input:q} --out {output:q} > {log:q} 2>&1"


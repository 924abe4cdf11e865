# Shift/focal point-cloud model (issue 7, docs/shiftfocal.md): RGB-D sources and matchforge scenes ->
# training items -> focal and shift networks per run -> evaluation on held-out items.



wildcard_constraints:
    source=wf.constraint("source"),
    sfrun=wf.constraint("sfrun"),


rule shiftfocal_data:
    input:
        unpack(wf.sf_data_inputs),
    output:
        directory("results/shiftfocal/data/{source}"),
    params:
        conf=wf.sf_source_conf,
        paths=wf.sf_data_args,
    log:
        "logs/shiftfocal/data_{source}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/shiftfocal/data_{source}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "matchforge shiftfocal-data --source {wildcards.source} {params.paths} --out {output:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule shiftfocal_train:
    input:
        unpack(wf.sf_train_inputs),
    output:
        focal="results/models/shiftfocal/{sfrun}/focal.pt",
        shift="results/models/shiftfocal/{sfrun}/shift.pt",
        metrics="results/models/shiftfocal/{sfrun}/metrics.json",
        curves=report("results/models/shiftfocal/{sfrun}/curves.png", category="Training", subcategory="shift/focal",
                      caption="../workflow/report/training.rst"),
    params:
        conf=wf.sf_train_params,
        out=wf.output_folder("focal"),
    log:
        "logs/shiftfocal/train_{sfrun}.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/shiftfocal/train_{sfrun}.tsv"
    threads: 2
    resources:
        engine=wf.sf_engine,
        gpu=1,
        mem_mb=16000,
    shell:
        "matchforge shiftfocal-train --data {input.data:q} --out {params.out:q} --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule shiftfocal_eval:
    input:
        focal="results/models/shiftfocal/{sfrun}/focal.pt",
        shift="results/models/shiftfocal/{sfrun}/shift.pt",
        data="results/shiftfocal/data/{source}",
    output:
        json="results/eval/shiftfocal/{sfrun}/{source}.json",
        plot=report("results/eval/shiftfocal/{sfrun}/{source}.png", category="Evaluations", subcategory="shift/focal",
                    caption="../workflow/report/shiftfocal.rst"),
        before="results/eval/shiftfocal/{sfrun}/{source}_before.ply",
        after="results/eval/shiftfocal/{sfrun}/{source}_after.ply",
        gt="results/eval/shiftfocal/{sfrun}/{source}_gt.ply",
    params:
        conf=wf.sf_eval_conf(),
        model_dir=wf.input_folder("focal"),
        out=wf.output_stem("json"),
    log:
        "logs/shiftfocal/eval_{sfrun}_{source}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/shiftfocal/eval_{sfrun}_{source}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "matchforge shiftfocal-eval --model-dir {params.model_dir:q} --data {input.data:q} --out {params.out:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


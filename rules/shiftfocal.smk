# Shift/focal point-cloud model (issue 7, docs/shiftfocal.md): RGB-D sources and matchforge scenes ->
# training items -> focal and shift networks per run -> evaluation on held-out items.



wildcard_constraints:
    source=wf.constraint("source"),
    shiftfocal_run=wf.constraint("shiftfocal_run"),


rule shiftfocal_data:
    input:
        unpack(wf.shiftfocal.data_inputs),
    output:
        directory(A.SHIFTFOCAL_DATA),
    params:
        conf=wf.shiftfocal.source_conf,
        paths=wf.shiftfocal.data_args,
    log:
        "logs/shiftfocal/data_{source}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/shiftfocal/data_{source}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "matchforge shiftfocal-data --source {wildcards.source} {params.paths} --out {output:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule shiftfocal_train:
    input:
        unpack(wf.shiftfocal.train_inputs),
    output:
        focal=A.SHIFTFOCAL_FOCAL,
        shift=A.SHIFTFOCAL_SHIFT,
        metrics=A.SHIFTFOCAL_METRICS,
        curves=report(A.SHIFTFOCAL_CURVES, category="Training", subcategory="shift/focal",
                      caption="../workflow/report/training.rst"),
    params:
        conf=wf.shiftfocal.train_params,
        out=wf.output_folder("focal"),
    log:
        "logs/shiftfocal/train_{shiftfocal_run}.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "logs/timings/shiftfocal/train_{shiftfocal_run}.tsv"
    threads: 2
    resources:
        engine=wf.shiftfocal.engine,
        gpu=1,
        mem_mb=16000,
    shell:
        "matchforge shiftfocal-train --data {input.data:q} --out {params.out:q} --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule shiftfocal_eval:
    input:
        focal=A.SHIFTFOCAL_FOCAL,
        shift=A.SHIFTFOCAL_SHIFT,
        data=A.SHIFTFOCAL_DATA,
    output:
        json=A.SHIFTFOCAL_EVAL,
        plot=report(A.SHIFTFOCAL_EVAL_PLOT, category="Evaluations", subcategory="shift/focal",
                    caption="../workflow/report/shiftfocal.rst"),
        before=A.SHIFTFOCAL_EVAL_BEFORE,
        after=A.SHIFTFOCAL_EVAL_AFTER,
        gt=A.SHIFTFOCAL_EVAL_GT,
    params:
        conf=wf.shiftfocal.eval_conf(),
        model_dir=wf.input_folder("focal"),
        out=wf.output_stem("json"),
    log:
        "logs/shiftfocal/eval_{shiftfocal_run}_{source}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/shiftfocal/eval_{shiftfocal_run}_{source}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "matchforge shiftfocal-eval --model-dir {params.model_dir:q} --data {input.data:q} --out {params.out:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


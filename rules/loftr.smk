# LoFTR (issue 5, docs/loftr.md): train each run of `loftr.runs`, evaluate it on each of its test sets,
# and evaluate the SIFT baseline on the same test sets.
# Checkpoints live in results/models/loftr/{run}/checkpoints/ (not an output): an interrupted job resumes.

LOFTR = config["loftr"]
LOFTR_RUNS = list(LOFTR["runs"])
LOFTR_TESTSETS = list(LOFTR["testsets"])


wildcard_constraints:
    run=one_of(LOFTR_RUNS),
    testset=one_of(LOFTR_TESTSETS),


# The workflow's own keys of a run (what to evaluate, GPUs to reserve): not training options at all. Engine
# options (training.engine.NOT_RESULT_OPTIONS) reach the job as a resource; neither retrains when edited.
_NOT_TRAINING = ("testsets", "gpus", "eval_gpus")


rule loftr_train:
    input:
        unpack(loftr_train_inputs),
        unpack(loftr_init_input),
    output:
        weights="results/models/loftr/{run}/weights.pt",
        official="results/models/loftr/{run}/weights_official.ckpt",
        meta="results/models/loftr/{run}/model.json",
        metrics="results/models/loftr/{run}/metrics.csv",
        curve=report("results/models/loftr/{run}/curve.png", category="Training", subcategory="LoFTR",
                     caption="../workflow/report/training.rst"),
    params:
        conf=lambda wc: result_options(loftr_train_conf(wc.run)),
        batch=loftr_batch,
        dataset=loftr_dataset_arg,
        out="results/models/loftr/{run}",
    log:
        "logs/loftr/{run}/train.log",
    benchmark:
        "benchmarks/loftr/{run}/train.tsv"
    threads: 2
    resources:
        engine=lambda wc: run_engine_options(loftr_train_conf(wc.run)),
        gpu=lambda wc: LOFTR["runs"][wc.run]["gpus"],
        mem_mb=16000,
        # SLURM: one task per device on each of num_nodes nodes, the layout Lightning's SLURM environment
        # expects; a multi-process run is an "mpi" job, whose shell command starts its tasks with srun
        nodes=lambda wc: loftr_layout(wc)[1],
        tasks_per_node=lambda wc: loftr_layout(wc)[0],
        mpi=lambda wc: "srun" if loftr_layout(wc)[0] * loftr_layout(wc)[1] > 1 else None,
    conda:
        "../envs/train.yaml"
    shell:
        # inside a SLURM allocation a multi-process run starts one task per device through srun
        "$( [ -n \"${{SLURM_JOB_ID:-}}\" ] && [ $(( {resources.tasks_per_node} * {resources.nodes} )) -gt 1 ]"
        " && echo srun --ntasks=$(( {resources.tasks_per_node} * {resources.nodes} ))"
        " --ntasks-per-node={resources.tasks_per_node} )"
        " {MF} loftr-train --run {wildcards.run} {params.dataset} --out {params.out:q}"
        " --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule loftr_eval:
    input:
        unpack(loftr_testset_inputs),
        unpack(loftr_before_input),
        weights="results/models/loftr/{run}/weights.pt",
        meta="results/models/loftr/{run}/model.json",
    output:
        json="results/eval/loftr/{run}/{testset}.json",
        vis=report("results/eval/loftr/{run}/{testset}_matches.jpg", category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=loftr_testset_conf,
        dataset=loftr_dataset_arg,
        before=loftr_before_arg,
    log:
        "logs/loftr/{run}/eval_{testset}.log",
    benchmark:
        "benchmarks/loftr/{run}/eval_{testset}.tsv"
    resources:
        gpu=lambda wc: LOFTR["runs"][wc.run]["eval_gpus"],
        mem_mb=8000,
    conda:
        "../envs/train.yaml"
    shell:
        "{MF} loftr-eval --name {wildcards.testset} --testset {params.testset:q} --weights {input.weights:q}"
        " {params.before} {params.dataset} --out {output.json:q} --vis {output.vis:q} > {log:q} 2>&1"


rule loftr_sift_eval:
    input:
        unpack(loftr_testset_inputs),
    output:
        json="results/eval/sift/relpose/{testset}.json",
        vis=report("results/eval/sift/relpose/{testset}_matches.jpg", category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=loftr_testset_conf,
        baseline=lambda wc: to_json(LOFTR["baseline"]),
        dataset=loftr_dataset_arg,
    log:
        "logs/sift/relpose_{testset}.log",
    benchmark:
        "benchmarks/sift/relpose_{testset}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../envs/train.yaml"
    shell:
        "{MF} loftr-eval --name {wildcards.testset} --testset {params.testset:q} --baseline sift"
        " --baseline-conf {params.baseline:q} {params.dataset} --out {output.json:q} --vis {output.vis:q} > {log:q} 2>&1"


TARGETS["loftr"] = loftr_targets

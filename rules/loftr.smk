# LoFTR (issue 5, docs/loftr.md): train each run of `loftr.runs`, evaluate it on each of its test sets,
# and evaluate the SIFT baseline on the same test sets.
# Checkpoints live in results/models/loftr/{run}/checkpoints/ (not an output): an interrupted job resumes.

LOFTR = config["loftr"]
LOFTR_RUNS = list(LOFTR["runs"])
LOFTR_TESTSETS = list(LOFTR["testsets"])


wildcard_constraints:
    run=one_of(LOFTR_RUNS),
    testset=one_of(LOFTR_TESTSETS + list(LOC)),


# The workflow's own keys of a run (what to evaluate, GPUs to reserve): not training options at all. Engine
# options (training.options.NOT_RESULT_OPTIONS) reach the job as a resource; neither retrains when edited.
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
    threads: loftr_threads
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
        " matchforge loftr-train --run {wildcards.run} {params.dataset} --out {params.out:q}"
        " --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


# Evaluation in two steps (docs/evaluation.md): match every pair of a test set once (match-pairs -> an hloc-style
# match file), then score the stored matches (score). Editing a scoring option (ransac_thresh, epi_err_thr,
# ransac_frame) reruns only the scoring; a fine-tuning run's "before" numbers are one more match file.


rule loftr_match:
    input:
        unpack(loftr_testset_inputs),
        weights="results/models/loftr/{run}/weights.pt",
        meta="results/models/loftr/{run}/model.json",
    output:
        "results/eval/matches/loftr/{run}/{testset}.h5",
    params:
        testset=lambda wc: to_json(matching_options(loftr_testset_spec(wc.testset))),
        matcher=lambda wc, input: to_json({"name": "loftr", "weights": input.weights}),
        dataset=loftr_dataset_arg,
    log:
        "logs/loftr/{run}/match_{testset}.log",
    benchmark:
        "benchmarks/loftr/{run}/match_{testset}.tsv"
    resources:
        gpu=lambda wc: LOFTR["runs"][wc.run]["eval_gpus"],
        mem_mb=8000,
    conda:
        "../envs/train.yaml"
    shell:
        "matchforge match-pairs --name {wildcards.testset} --testset {params.testset:q} --matcher {params.matcher:q}"
        " {params.dataset} --out {output:q} > {log:q} 2>&1"


use rule loftr_match as loftr_init_match with:
    input:
        unpack(loftr_testset_inputs),
        unpack(loftr_init_input),
    output:
        "results/eval/matches/loftr-init/{run}/{testset}.h5",
    params:
        testset=lambda wc: to_json(matching_options(loftr_testset_spec(wc.testset))),
        matcher=lambda wc, input: to_json({"name": "loftr", "weights": loftr_init_weights(wc, input)}),
        dataset=loftr_dataset_arg,
    log:
        "logs/loftr/{run}/match_init_{testset}.log",
    benchmark:
        "benchmarks/loftr/{run}/match_init_{testset}.tsv"


rule loftr_score:
    wildcard_constraints:
        testset=one_of(LOFTR_TESTSETS),
    input:
        unpack(loftr_testset_inputs),
        unpack(loftr_before_matches),
        matches="results/eval/matches/loftr/{run}/{testset}.h5",
    output:
        json="results/eval/loftr/{run}/{testset}.json",
        vis=report("results/eval/loftr/{run}/{testset}_matches.jpg", category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=loftr_testset_conf,
        dataset=loftr_dataset_arg,
        before=lambda wc, input: f"--before {input.before}" if "before" in input.keys() else "",
    log:
        "logs/loftr/{run}/score_{testset}.log",
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge score --name {wildcards.testset} --label loftr/{wildcards.run} --testset {params.testset:q}"
        " --matches {input.matches:q} {params.before} {params.dataset} --out {output.json:q} --vis {output.vis:q} > {log:q} 2>&1"


rule sift_ratio_match:
    input:
        unpack(loftr_testset_inputs),
    output:
        "results/eval/matches/sift/ratio/{testset}.h5",
    params:
        testset=lambda wc: to_json(matching_options(loftr_testset_spec(wc.testset))),
        matcher=lambda wc: to_json({"name": "sift", **{k: v for k, v in LOFTR["baseline"].items() if k != "enabled"}}),
        dataset=loftr_dataset_arg,
    log:
        "logs/sift/ratio/match_{testset}.log",
    benchmark:
        "benchmarks/sift/ratio/match_{testset}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge match-pairs --name {wildcards.testset} --testset {params.testset:q} --matcher {params.matcher:q}"
        " {params.dataset} --out {output:q} > {log:q} 2>&1"


rule sift_ratio_score:
    wildcard_constraints:
        testset=one_of(LOFTR_TESTSETS),
    input:
        unpack(loftr_testset_inputs),
        matches="results/eval/matches/sift/ratio/{testset}.h5",
    output:
        json="results/eval/sift/ratio/{testset}.json",
        vis=report("results/eval/sift/ratio/{testset}_matches.jpg", category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=loftr_testset_conf,
        dataset=loftr_dataset_arg,
        label=lambda wc: sift_ratio_label(),
    log:
        "logs/sift/ratio/score_{testset}.log",
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge score --name {wildcards.testset} --label {params.label:q} --testset {params.testset:q}"
        " --matches {input.matches:q} {params.dataset} --out {output.json:q} --vis {output.vis:q} > {log:q} 2>&1"


rule loftr_localize:
    wildcard_constraints:
        testset=one_of(LOC),
    input:
        unpack(loftr_testset_inputs),
        matches="results/eval/matches/loftr/{run}/{testset}.h5",
    output:
        "results/eval/loftr/{run}/{testset}.json",
    params:
        testset=loftr_testset_conf,
        label="loftr/{run}",
    log:
        "logs/loftr/{run}/localize_{testset}.log",
    benchmark:
        "benchmarks/loftr/{run}/localize_{testset}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge score --name {wildcards.testset} --label {params.label:q} --testset {params.testset:q}"
        " --matches {input.matches:q} --out {output:q} > {log:q} 2>&1"


use rule loftr_localize as sift_ratio_localize with:
    input:
        unpack(loftr_testset_inputs),
        matches="results/eval/matches/sift/ratio/{testset}.h5",
    output:
        "results/eval/sift/ratio/{testset}.json",
    params:
        testset=loftr_testset_conf,
        label=lambda wc: sift_ratio_label(),
    log:
        "logs/sift/ratio/localize_{testset}.log",
    benchmark:
        "benchmarks/sift/ratio/localize_{testset}.tsv"


TARGETS["loftr"] = loftr_targets

# LoFTR (issue 5, docs/loftr.md): train each run of `loftr.runs`, evaluate it on each of its test sets,
# and evaluate the SIFT baseline on the same test sets.
# Checkpoints live in results/models/loftr/{run}/checkpoints/ (not an output): an interrupted job resumes.

wildcard_constraints:
    run=wf.constraint("run"),
    testset=wf.constraint("testset"),


rule loftr_train:
    input:
        unpack(wf.loftr.train_inputs),
        unpack(wf.loftr.init_input),
    output:
        weights=A.LOFTR_WEIGHTS,
        official=A.LOFTR_OFFICIAL,
        meta=A.LOFTR_MODEL,
        metrics=A.LOFTR_METRICS,
        curve=report(A.LOFTR_CURVE, category="Training", subcategory="LoFTR",
                     caption="../workflow/report/training.rst"),
    params:
        conf=wf.loftr.train_params,
        batch=wf.loftr.batch,
        dataset=wf.loftr.dataset_arg,
        out=A.LOFTR_RUN,
    log:
        "logs/loftr/{run}/train.log",
    benchmark:
        "logs/timings/loftr/{run}/train.tsv"
    threads: wf.loftr.threads
    resources:
        engine=wf.loftr.engine,
        gpu=wf.loftr.gpus,
        mem_mb=16000,
        # SLURM: one task per device on each of num_nodes nodes, the layout Lightning's SLURM environment
        # expects; a multi-process run is an "mpi" job, whose shell command starts its tasks with srun
        nodes=wf.loftr.nodes,
        tasks_per_node=wf.loftr.tasks_per_node,
        mpi=wf.loftr.mpi,
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
        unpack(wf.loftr.testset_inputs),
        weights=A.LOFTR_WEIGHTS,
        meta=A.LOFTR_MODEL,
    output:
        A.LOFTR_MATCHES,
    params:
        testset=wf.loftr.matching_conf,
        matcher=wf.loftr.matcher,
        dataset=wf.loftr.dataset_arg,
    log:
        "logs/loftr/{run}/match_{testset}.log",
    benchmark:
        "logs/timings/loftr/{run}/match_{testset}.tsv"
    resources:
        gpu=wf.loftr.eval_gpus,
        mem_mb=8000,
    conda:
        "../envs/train.yaml"
    shell:
        "matchforge match-pairs --name {wildcards.testset} --testset {params.testset:q} --matcher {params.matcher:q}"
        " {params.dataset} --out {output:q} > {log:q} 2>&1"


use rule loftr_match as loftr_init_match with:
    input:
        unpack(wf.loftr.testset_inputs),
        unpack(wf.loftr.init_input),
    output:
        A.LOFTR_INIT_MATCHES,
    params:
        testset=wf.loftr.matching_conf,
        matcher=wf.loftr.init_matcher,
        dataset=wf.loftr.dataset_arg,
    log:
        "logs/loftr/{run}/match_init_{testset}.log",
    benchmark:
        "logs/timings/loftr/{run}/match_init_{testset}.tsv"


rule loftr_score:
    wildcard_constraints:
        testset=wf.constraint("loftr_testset"),
    input:
        unpack(wf.loftr.testset_inputs),
        unpack(wf.loftr.before_matches),
        matches=A.LOFTR_MATCHES,
    output:
        json=A.LOFTR_EVAL,
        vis=report(A.LOFTR_EVAL_PICTURE, category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=wf.loftr.testset_conf,
        dataset=wf.loftr.dataset_arg,
        before=wf.loftr.before_arg,
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
        unpack(wf.loftr.testset_inputs),
    output:
        A.SIFT_RATIO_MATCHES,
    params:
        testset=wf.loftr.matching_conf,
        matcher=wf.loftr.baseline_matcher,
        dataset=wf.loftr.dataset_arg,
    log:
        "logs/sift/ratio/match_{testset}.log",
    benchmark:
        "logs/timings/sift/ratio/match_{testset}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge match-pairs --name {wildcards.testset} --testset {params.testset:q} --matcher {params.matcher:q}"
        " {params.dataset} --out {output:q} > {log:q} 2>&1"


rule sift_ratio_score:
    wildcard_constraints:
        testset=wf.constraint("loftr_testset"),
    input:
        unpack(wf.loftr.testset_inputs),
        matches=A.SIFT_RATIO_MATCHES,
    output:
        json=A.SIFT_RATIO_EVAL,
        vis=report(A.SIFT_RATIO_PICTURE, category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=wf.loftr.testset_conf,
        dataset=wf.loftr.dataset_arg,
        label=wf.loftr.baseline_label,
    log:
        "logs/sift/ratio/score_{testset}.log",
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge score --name {wildcards.testset} --label {params.label:q} --testset {params.testset:q}"
        " --matches {input.matches:q} {params.dataset} --out {output.json:q} --vis {output.vis:q} > {log:q} 2>&1"


rule localization_pairs:
    wildcard_constraints:
        testset=wf.constraint("localization_testset"),
    input:
        unpack(wf.localization.pairs_inputs),
    output:
        A.LOCALIZATION_PAIRS,
    params:
        testset=wf.localization.pairs_conf,
    log:
        "logs/localization/pairs_{testset}.log",
    benchmark:
        "logs/timings/localization/pairs_{testset}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge localization-pairs --testset {params.testset:q} --out {output:q} > {log:q} 2>&1"


rule loftr_localize:
    wildcard_constraints:
        testset=wf.constraint("localization_testset"),
    input:
        unpack(wf.loftr.testset_inputs),
        matches=A.LOFTR_MATCHES,
    output:
        A.LOFTR_EVAL,
    params:
        testset=wf.loftr.testset_conf,
        label="loftr/{run}",
    log:
        "logs/loftr/{run}/localize_{testset}.log",
    benchmark:
        "logs/timings/loftr/{run}/localize_{testset}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../envs/sfm.yaml"
    shell:
        "matchforge score --name {wildcards.testset} --label {params.label:q} --testset {params.testset:q}"
        " --matches {input.matches:q} --out {output:q} > {log:q} 2>&1"


use rule loftr_localize as sift_ratio_localize with:
    input:
        unpack(wf.loftr.testset_inputs),
        matches=A.SIFT_RATIO_MATCHES,
    output:
        A.SIFT_RATIO_EVAL,
    params:
        testset=wf.loftr.testset_conf,
        label=wf.loftr.baseline_label,
    log:
        "logs/sift/ratio/localize_{testset}.log",
    benchmark:
        "logs/timings/sift/ratio/localize_{testset}.tsv"


# PoSFeat (issue 6, docs/posfeat.md): description net -> detection net per run, then extraction and
# evaluation on named test sets (homography MMA, relative pose, reconstruction), with SIFT as baseline.



wildcard_constraints:
    posfeat_run=wf.constraint("posfeat_run"),
    posfeat_testset=wf.constraint("posfeat_testset"),


rule posfeat_desc:
    input:
        unpack(wf.posfeat.train_inputs),
    output:
        model=A.POSFEAT_DESC,
        curve=report(A.POSFEAT_DESC_CURVE, category="Training", subcategory="PoSFeat",
                     caption="../workflow/report/posfeat_training.rst"),
    params:
        conf=wf.posfeat.train_params,
        args=wf.posfeat.train_args,
        out=wf.output_folder("model", up=2),
    log:
        "logs/posfeat/{posfeat_run}/desc.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "logs/timings/posfeat/{posfeat_run}/desc.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        engine=wf.posfeat.engine,
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} matchforge posfeat-train --stage desc {params.args} --out {params.out:q} --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule posfeat_kp:
    input:
        unpack(wf.posfeat.train_inputs),
        desc=A.POSFEAT_DESC,
    output:
        model=A.POSFEAT_KP,
        curve=report(A.POSFEAT_KP_CURVE, category="Training", subcategory="PoSFeat",
                     caption="../workflow/report/posfeat_training.rst"),
    params:
        conf=wf.posfeat.train_params,
        args=wf.posfeat.train_args,
        out=wf.output_folder("model", up=2),
    log:
        "logs/posfeat/{posfeat_run}/kp.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "logs/timings/posfeat/{posfeat_run}/kp.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        engine=wf.posfeat.engine,
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} matchforge posfeat-train --stage kp {params.args} --init {input.desc:q} --out {params.out:q}"
        " --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule posfeat_extract:
    input:
        model=A.POSFEAT_KP,
        data=wf.posfeat.testset_input,
    output:
        A.POSFEAT_FEATURES,
    params:
        conf=wf.posfeat.extract_conf,
        testset=wf.posfeat.matching_conf,
    log:
        "logs/posfeat/{posfeat_run}/extract_{posfeat_testset}.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "logs/timings/posfeat/{posfeat_run}/extract_{posfeat_testset}.tsv"
    resources:
        gpu=1,
        mem_mb=8000,
    shell:
        "matchforge extract --testset {params.testset:q} --model {input.model:q} --out {output:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule sift_extract:
    input:
        data=wf.posfeat.testset_input,
    output:
        A.SIFT_MNN_FEATURES,
    params:
        conf=wf.posfeat.sift_extract_conf,
        testset=wf.posfeat.matching_conf,
    log:
        "logs/sift/mnn/extract_{posfeat_testset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/sift/mnn/extract_{posfeat_testset}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "matchforge extract --testset {params.testset:q} --out {output:q} --conf {params.conf:q} > {log:q} 2>&1"


# Pose and homography test sets: export the mutual-NN matches of the stored features, then score them, as for
# LoFTR (docs/evaluation.md); reconstruction test sets map the features directly.


rule posfeat_match:
    wildcard_constraints:
        posfeat_testset=wf.constraint("posfeat_matched"),
    input:
        features=A.POSFEAT_FEATURES,
        data=wf.posfeat.testset_input,
    output:
        A.POSFEAT_MATCHES,
    params:
        testset=wf.posfeat.matching_conf,
        matcher=wf.posfeat.matcher,
    log:
        "logs/posfeat/{posfeat_run}/match_{posfeat_testset}.log",
    conda:
        "../envs/sfm.yaml"
    resources:
        mem_mb=4000,
    shell:
        "matchforge match-pairs --name {wildcards.posfeat_testset} --testset {params.testset:q} --matcher {params.matcher:q}"
        " --out {output:q} > {log:q} 2>&1"


use rule posfeat_match as sift_mnn_match with:
    input:
        features=A.SIFT_MNN_FEATURES,
        data=wf.posfeat.testset_input,
    output:
        A.SIFT_MNN_MATCHES,
    params:
        testset=wf.posfeat.matching_conf,
        matcher=wf.posfeat.sift_matcher,
    log:
        "logs/sift/mnn/match_{posfeat_testset}.log",


rule posfeat_score:
    wildcard_constraints:
        posfeat_testset=wf.constraint("posfeat_matched"),
    input:
        unpack(wf.posfeat.compare),
        matches=A.POSFEAT_MATCHES,
        data=wf.posfeat.testset_input,
    output:
        A.POSFEAT_EVAL,
    params:
        testset=wf.posfeat.testset_conf,
        compare=wf.posfeat.compare_arg,
        label="posfeat/{posfeat_run}",
    log:
        "logs/posfeat/{posfeat_run}/score_{posfeat_testset}.log",
    conda:
        "../envs/sfm.yaml"
    resources:
        mem_mb=4000,
    shell:
        "matchforge score --name {wildcards.posfeat_testset} --label {params.label:q} --testset {params.testset:q} --matches {input.matches:q}"
        " --out {output:q} --compare {params.compare} > {log:q} 2>&1"


use rule posfeat_score as sift_mnn_score with:
    input:
        matches=A.SIFT_MNN_MATCHES,
        data=wf.posfeat.testset_input,
    output:
        A.SIFT_MNN_EVAL,
    params:
        testset=wf.posfeat.testset_conf,
        compare="",
        label=wf.posfeat.sift_label,
    log:
        "logs/sift/mnn/score_{posfeat_testset}.log",


rule posfeat_reconstruct:
    wildcard_constraints:
        posfeat_testset=wf.constraint("posfeat_reconstruction"),
    input:
        features=A.POSFEAT_FEATURES,
        data=wf.posfeat.testset_input,
    output:
        A.POSFEAT_EVAL,
    params:
        testset=wf.posfeat.testset_conf,
        label="posfeat/{posfeat_run}",
    log:
        "logs/posfeat/{posfeat_run}/reconstruct_{posfeat_testset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/posfeat/{posfeat_run}/reconstruct_{posfeat_testset}.tsv"
    resources:
        mem_mb=8000,
    shell:
        "matchforge reconstruct-eval --testset {params.testset:q} --features {input.features:q} --out {output:q}"
        " --label {params.label:q} > {log:q} 2>&1"


use rule posfeat_reconstruct as sift_mnn_reconstruct with:
    input:
        features=A.SIFT_MNN_FEATURES,
        data=wf.posfeat.testset_input,
    output:
        A.SIFT_MNN_EVAL,
    params:
        testset=wf.posfeat.testset_conf,
        label=wf.posfeat.sift_label,
    log:
        "logs/sift/mnn/reconstruct_{posfeat_testset}.log",
    benchmark:
        "logs/timings/sift/mnn/reconstruct_{posfeat_testset}.tsv"


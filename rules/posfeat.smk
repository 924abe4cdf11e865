# PoSFeat (issue 6, docs/posfeat.md): description net -> detection net per run, then extraction and
# evaluation on named test sets (homography MMA, relative pose, reconstruction), with SIFT as baseline.



wildcard_constraints:
    pfrun=wf.constraint("pfrun"),
    pftestset=wf.constraint("pftestset"),


rule posfeat_desc:
    input:
        unpack(wf.pf_train_inputs),
    output:
        model=A.POSFEAT_DESC,
        curve=report(A.POSFEAT_DESC_CURVE, category="Training", subcategory="PoSFeat",
                     caption="../workflow/report/posfeat_training.rst"),
    params:
        conf=wf.pf_train_params,
        args=wf.pf_train_args,
        out=wf.output_folder("model", up=2),
    log:
        "logs/posfeat/{pfrun}/desc.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/desc.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        engine=wf.pf_engine,
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} matchforge posfeat-train --stage desc {params.args} --out {params.out:q} --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule posfeat_kp:
    input:
        unpack(wf.pf_train_inputs),
        desc=A.POSFEAT_DESC,
    output:
        model=A.POSFEAT_KP,
        curve=report(A.POSFEAT_KP_CURVE, category="Training", subcategory="PoSFeat",
                     caption="../workflow/report/posfeat_training.rst"),
    params:
        conf=wf.pf_train_params,
        args=wf.pf_train_args,
        out=wf.output_folder("model", up=2),
    log:
        "logs/posfeat/{pfrun}/kp.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/kp.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        engine=wf.pf_engine,
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} matchforge posfeat-train --stage kp {params.args} --init {input.desc:q} --out {params.out:q}"
        " --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule posfeat_extract:
    input:
        model=A.POSFEAT_KP,
        data=wf.pf_testset_input,
    output:
        A.POSFEAT_FEATURES,
    params:
        conf=wf.pf_extract_conf,
        testset=wf.pf_matching_conf,
    log:
        "logs/posfeat/{pfrun}/extract_{pftestset}.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/extract_{pftestset}.tsv"
    resources:
        gpu=1,
        mem_mb=8000,
    shell:
        "matchforge extract --testset {params.testset:q} --model {input.model:q} --out {output:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule sift_extract:
    input:
        data=wf.pf_testset_input,
    output:
        A.SIFT_MNN_FEATURES,
    params:
        conf=wf.sift_extract_conf,
        testset=wf.pf_matching_conf,
    log:
        "logs/sift/mnn/extract_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/sift/mnn/extract_{pftestset}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "matchforge extract --testset {params.testset:q} --out {output:q} --conf {params.conf:q} > {log:q} 2>&1"


# Pose and homography test sets: export the mutual-NN matches of the stored features, then score them, as for
# LoFTR (docs/evaluation.md); reconstruction test sets map the features directly.


rule posfeat_match:
    wildcard_constraints:
        pftestset=wf.constraint("pf_matched"),
    input:
        features=A.POSFEAT_FEATURES,
        data=wf.pf_testset_input,
    output:
        A.POSFEAT_MATCHES,
    params:
        testset=wf.pf_matching_conf,
        matcher=wf.pf_matcher,
    log:
        "logs/posfeat/{pfrun}/match_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    resources:
        mem_mb=4000,
    shell:
        "matchforge match-pairs --name {wildcards.pftestset} --testset {params.testset:q} --matcher {params.matcher:q}"
        " --out {output:q} > {log:q} 2>&1"


use rule posfeat_match as sift_mnn_match with:
    input:
        features=A.SIFT_MNN_FEATURES,
        data=wf.pf_testset_input,
    output:
        A.SIFT_MNN_MATCHES,
    params:
        testset=wf.pf_matching_conf,
        matcher=wf.sift_mnn_matcher,
    log:
        "logs/sift/mnn/match_{pftestset}.log",


rule posfeat_score:
    wildcard_constraints:
        pftestset=wf.constraint("pf_matched"),
    input:
        unpack(wf.pf_compare),
        matches=A.POSFEAT_MATCHES,
        data=wf.pf_testset_input,
    output:
        A.POSFEAT_EVAL,
    params:
        testset=wf.pf_testset_conf,
        compare=wf.pf_compare_arg,
        label="posfeat/{pfrun}",
    log:
        "logs/posfeat/{pfrun}/score_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    resources:
        mem_mb=4000,
    shell:
        "matchforge score --name {wildcards.pftestset} --label {params.label:q} --testset {params.testset:q} --matches {input.matches:q}"
        " --out {output:q} --compare {params.compare} > {log:q} 2>&1"


use rule posfeat_score as sift_mnn_score with:
    input:
        matches=A.SIFT_MNN_MATCHES,
        data=wf.pf_testset_input,
    output:
        A.SIFT_MNN_EVAL,
    params:
        testset=wf.pf_testset_conf,
        compare="",
        label=wf.sift_mnn_label,
    log:
        "logs/sift/mnn/score_{pftestset}.log",


rule posfeat_reconstruct:
    wildcard_constraints:
        pftestset=wf.constraint("pf_reconstruction"),
    input:
        features=A.POSFEAT_FEATURES,
        data=wf.pf_testset_input,
    output:
        A.POSFEAT_EVAL,
    params:
        testset=wf.pf_testset_conf,
        label="posfeat/{pfrun}",
    log:
        "logs/posfeat/{pfrun}/reconstruct_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/reconstruct_{pftestset}.tsv"
    resources:
        mem_mb=8000,
    shell:
        "matchforge reconstruct-eval --testset {params.testset:q} --features {input.features:q} --out {output:q}"
        " --label {params.label:q} > {log:q} 2>&1"


use rule posfeat_reconstruct as sift_mnn_reconstruct with:
    input:
        features=A.SIFT_MNN_FEATURES,
        data=wf.pf_testset_input,
    output:
        A.SIFT_MNN_EVAL,
    params:
        testset=wf.pf_testset_conf,
        label=wf.sift_mnn_label,
    log:
        "logs/sift/mnn/reconstruct_{pftestset}.log",
    benchmark:
        "benchmarks/sift/mnn/reconstruct_{pftestset}.tsv"


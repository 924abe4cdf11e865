# PoSFeat (issue 6, docs/posfeat.md): description net -> detection net per run, then extraction and
# evaluation on named test sets (homography MMA, relative pose, reconstruction), with SIFT as baseline.

PF = config["posfeat"]
PF_RUNS = PF["runs"]
PF_TESTSETS = PF["testsets"]




wildcard_constraints:
    pfrun=one_of(PF_RUNS),
    pftestset=one_of(PF_TESTSETS),


rule posfeat_desc:
    input:
        unpack(pf_train_inputs),
    output:
        model="results/models/posfeat/{pfrun}/desc/model.pt",
    params:
        conf=lambda wc: result_options(pf_run_conf(wc.pfrun)),
        args=pf_train_args,
        out=lambda wc, output: str(Path(output.model).parents[1]),
    log:
        "logs/posfeat/{pfrun}/desc.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/desc.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        engine=lambda wc: run_engine_options(pf_run_conf(wc.pfrun)),
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} {MF} posfeat-train --stage desc {params.args} --out {params.out:q} --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule posfeat_kp:
    input:
        unpack(pf_train_inputs),
        desc="results/models/posfeat/{pfrun}/desc/model.pt",
    output:
        model="results/models/posfeat/{pfrun}/kp/model.pt",
    params:
        conf=lambda wc: result_options(pf_run_conf(wc.pfrun)),
        args=pf_train_args,
        out=lambda wc, output: str(Path(output.model).parents[1]),
    log:
        "logs/posfeat/{pfrun}/kp.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/kp.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        engine=lambda wc: run_engine_options(pf_run_conf(wc.pfrun)),
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} {MF} posfeat-train --stage kp {params.args} --init {input.desc:q} --out {params.out:q}"
        " --conf {params.conf:q} --engine {resources.engine:q} > {log:q} 2>&1"


rule posfeat_extract:
    input:
        model="results/models/posfeat/{pfrun}/kp/model.pt",
        data=pf_testset_input,
    output:
        "results/eval/posfeat/{pfrun}/features/{pftestset}.h5",
    params:
        conf=lambda wc: to_json({**pf_run_conf(wc.pfrun)["extract"], "method": "posfeat", "device": PF["device"]}),
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
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
        "{MF} extract --testset {params.testset:q} --model {input.model:q} --out {output:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule sift_extract:
    input:
        data=pf_testset_input,
    output:
        "results/eval/sift/baseline/features/{pftestset}.h5",
    params:
        conf=lambda wc: to_json({"max_size": PF["extract"]["max_size"], "num_pts": PF["extract"]["num_pts"],
                                 "method": "sift"}),
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
    log:
        "logs/sift/baseline/extract_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/sift/baseline/extract_{pftestset}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{MF} extract --testset {params.testset:q} --out {output:q} --conf {params.conf:q} > {log:q} 2>&1"


rule posfeat_eval:
    input:
        unpack(pf_compare),
        features="results/eval/posfeat/{pfrun}/features/{pftestset}.h5",
        data=pf_testset_input,
    output:
        "results/eval/posfeat/{pfrun}/{pftestset}.json",
    params:
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
        compare=lambda wc, input: " ".join(f"{k}={input[k]}" for k in pf_compare(wc)),
    log:
        "logs/posfeat/{pfrun}/eval_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/eval_{pftestset}.tsv"
    resources:
        mem_mb=8000,
    shell:
        "{MF} posfeat-eval --testset {params.testset:q} --features {input.features:q} --out {output:q}"
        " --label posfeat/{wildcards.pfrun} --compare {params.compare} > {log:q} 2>&1"


rule sift_eval:
    input:
        features="results/eval/sift/baseline/features/{pftestset}.h5",
        data=pf_testset_input,
    output:
        "results/eval/sift/baseline/{pftestset}.json",
    params:
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
    log:
        "logs/sift/baseline/eval_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/sift/baseline/eval_{pftestset}.tsv"
    resources:
        mem_mb=8000,
    shell:
        "{MF} posfeat-eval --testset {params.testset:q} --features {input.features:q} --out {output:q}"
        " --label sift > {log:q} 2>&1"


TARGETS["posfeat"] = pf_targets

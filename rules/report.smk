# Summary tables of every stage's results; `snakemake --report results/report.html` renders them with
# the plots that rules flag with report().


def summary_inputs(wildcards):
    return [path for name in TARGETS if name != "report" for path in TARGETS[name]()]


rule summary:
    input:
        summary_inputs,
    output:
        scenes=report("results/summary/scenes.csv", category="Summary", caption="../workflow/report/scenes.rst"),
        evals=report("results/summary/evaluations.csv", category="Summary", caption="../workflow/report/evaluations.rst"),
        plot=report("results/summary/evaluations.png", category="Summary", caption="../workflow/report/evaluations.rst"),
    log:
        "logs/summary.log",
    conda:
        "../envs/sfm.yaml"
    localrule: True
    shell:
        "{MF} summarize --results results --out results/summary > {log:q} 2>&1"


TARGETS["report"] = lambda: rules.summary.output

# Summary tables and figures of every stage's results, one per kind of result; `snakemake --report
# results/report.html` renders them with the plots that rules flag with report().


rule summary:
    input:
        wf.summary_inputs,
    output:
        scenes=report(A.SUMMARY_SCENES, category="Summary", caption="../workflow/report/scenes.rst"),
        **wf.summary_outputs(report),
    log:
        "logs/summary.log",
    conda:
        "../envs/sfm.yaml"
    localrule: True
    shell:
        f"matchforge summarize {{input:q}} --out {A.SUMMARY} > {{log:q}} 2>&1"


# Summary tables and figures of every stage's results, one per kind of result; `snakemake --report
# results/report.html` renders them with the plots that rules flag with report().


def _summary_output(kind, caption):
    return {
        f"{kind}_csv": report(f"results/summary/{kind}.csv", category="Summary", caption=f"../workflow/report/{caption}.rst"),
        f"{kind}_png": report(f"results/summary/{kind}.png", category="Summary", caption=f"../workflow/report/{caption}.rst"),
    }


rule summary:
    input:
        summary_inputs,
    output:
        scenes=report("results/summary/scenes.csv", category="Summary", caption="../workflow/report/scenes.rst"),
        **_summary_output("relpose", "relpose"),
        **_summary_output("homography", "homography"),
        **_summary_output("reconstruction", "reconstruction"),
        **_summary_output("shape", "shape_eval"),
    log:
        "logs/summary.log",
    conda:
        "../envs/sfm.yaml"
    localrule: True
    shell:
        "{MF} summarize {input:q} --out results/summary > {log:q} 2>&1"


TARGETS["report"] = lambda: rules.summary.output

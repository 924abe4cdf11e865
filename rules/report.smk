# Summary tables and figures of every stage's results, one per kind of result; `snakemake --report
# results/report.html` renders them with the plots that rules flag with report().


from matchforge.summary import KINDS

CAPTIONS = {"shape": "shape_eval"}  # workflow/report/<caption>.rst; the others are named after their kind


def _summary_outputs():
    """One table and one figure per kind of result (summary.KINDS), each in the report's Summary section."""
    out = {}
    for kind in KINDS:
        caption = f"../workflow/report/{CAPTIONS.get(kind, kind)}.rst"
        out[f"{kind}_csv"] = report(f"results/summary/{kind}.csv", category="Summary", caption=caption)
        out[f"{kind}_png"] = report(f"results/summary/{kind}.png", category="Summary", caption=caption)
    return out


rule summary:
    input:
        summary_inputs,
    output:
        scenes=report("results/summary/scenes.csv", category="Summary", caption="../workflow/report/scenes.rst"),
        **_summary_outputs(),
    log:
        "logs/summary.log",
    conda:
        "../envs/sfm.yaml"
    localrule: True
    shell:
        "{MF} summarize {input:q} --out results/summary > {log:q} 2>&1"


TARGETS["report"] = lambda: rules.summary.output

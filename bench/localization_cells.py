"""Localization recall against the keypoint cell size and the assignment tolerance (``cell_px``, ``max_error_px``).

Dense matchers (LoFTR) do not repeat keypoints across pairs, so localization gathers each image's matched points
over all of its pairs into one keypoint per cell (hloc's ``match_dense``). This scores the same stored matches
with every (cell, tolerance) of a grid, so the matcher is not rerun:

- the demo scene (``results/``, built by ``snakemake``, with the shipped ``demo_loc`` options): its 3 test photos
  localized against its 7 training photos, for every LoFTR run and the SIFT baseline; recall at 0.25/0.5/5 median
  camera baselines;
- the Reichstag (``resources/testsets/reichstag``): 3 queries against 7 database photos, ground truth from the
  Image Matching Challenge reconstruction (independent of matchforge), matched by the demo's LoFTR ``demo_ds``
  and by SIFT at 640 px.

It prints one table per scene (recall@1/2/3 %, median rotation error, 2D-3D correspondences and RANSAC inliers
per query) and exits 1 when the default (``cell_px``, ``max_error_px``) of ``localization.testsets`` gives a
method that localizes anything on the Reichstag a lower recall (summed over the three thresholds) than the best
setting of the grid.

    .venv/bin/python bench/localization_cells.py [--cells 1 2 4 8 16] [--errors 1 2 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))


def grid_rows(spec: dict, matches: dict[str, Path], cells: list[float], errors: list[float], work: Path) -> pd.DataFrame:
    from matchforge.evaluation.localization import score

    rows = []
    for method, path in matches.items():
        for cell in cells:
            for err in errors:
                res = score({**spec, "cell_px": cell, "max_error_px": err}, path, work / f"{method.replace('/', '_')}")
                rows.append({"method": method, "cell_px": cell, "max_error_px": err,
                             **{f"recall@{k}": res[f"recall@{k}"] for k in (1, 2, 3)},
                             "median_R_error": res["median_R_error"], "localized": res["localized"],
                             "correspondences": np.mean([q["num_correspondences"] for q in res["queries"]]),
                             "inliers": np.mean([q["num_inliers"] for q in res["queries"]])})
    return pd.DataFrame(rows)


def demo(cells: list[float], errors: list[float], work: Path) -> pd.DataFrame | None:
    dataset = REPO / "results" / "datasets" / "demo" / "dataset.json"
    found = {f"{p.parent.parent.name}/{p.parent.name}": p for p in sorted((REPO / "results" / "eval" / "matches").glob("*/*/demo_loc.h5"))}
    if not dataset.is_file() or not found:
        print("demo results missing: run snakemake first")
        return None
    import yaml

    shipped = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["localization"]["testsets"]["demo_loc"]
    spec = {**{k: v for k, v in shipped.items() if k != "dataset"}, "dataset": str(dataset),
            "sfm": str(REPO / "results" / "sacre_coeur" / "sfm"),
            "query_pairs": str(REPO / "results" / "eval" / "localization" / "demo_loc" / "pairs-query.txt")}
    return grid_rows(spec, {m: p for m, p in found.items() if not m.startswith("posfeat")}, cells, errors, work)


def reichstag(cells: list[float], errors: list[float], work: Path) -> pd.DataFrame:
    from matchforge.evaluation.match_pairs import main as match_pairs
    from test_localization import make_aachen

    files = make_aachen(work / "aachen")
    spec = {"type": "localization", "img_resize": 640, **{k: str(v) for k, v in files.items()}}
    matchers = {"sift/ratio": {"name": "sift", "ratio": 0.8, "max_keypoints": 4096}}
    weights = REPO / "results" / "models" / "loftr" / "demo_ds" / "weights.pt"
    if weights.is_file():
        matchers["loftr/demo_ds"] = {"name": "loftr", "weights": str(weights)}
    paths = {}
    for method, conf in matchers.items():
        paths[method] = work / f"reichstag_{method.replace('/', '_')}.h5"
        match_pairs(spec, conf, paths[method], name="reichstag")
    return grid_rows(spec, paths, cells, errors, work)


def main() -> int:
    from matchforge.evaluation.config import LocalizationTestset

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=float, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--errors", type=float, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    defaults = LocalizationTestset.model_fields
    cells = sorted(set(args.cells) | {defaults["cell_px"].default})
    errors = sorted(set(args.errors) | {defaults["max_error_px"].default})
    with tempfile.TemporaryDirectory() as tmp:
        out = {"demo": demo(cells, errors, Path(tmp)), "reichstag": reichstag(cells, errors, Path(tmp))}
    missed = False
    for name, table in out.items():
        if table is None:
            continue
        print(f"\n== {name}\n" + table.to_markdown(index=False, floatfmt=".1f"))
        table = table.assign(recall=table[["recall@1", "recall@2", "recall@3"]].sum(1))
        for method, rows in table.groupby("method"):
            by_setting = rows.set_index(["cell_px", "max_error_px"])["recall"]
            default = by_setting[(defaults["cell_px"], defaults["max_error_px"])]
            print(f"{name} {method}: recall@1+2+3 {default:.1f} at the default {defaults['cell_px']:g} px / "
                  f"{defaults['max_error_px']:g} px, best {by_setting.max():.1f}, 1-px grid {by_setting.get((1.0, 1.0), float('nan')):.1f}")
            missed |= name == "reichstag" and by_setting.max() > 0 and default < by_setting.max()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

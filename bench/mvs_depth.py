"""Depth backends on the demo scene, in one run: the ``sparse`` backend (baseline) against COLMAP PatchMatch
stereo (``mvs``, CUDA), each through the workflow's own alignment, consistency filter and QA.

Prints one Markdown table for ``docs/depth.md`` / ``docs/performance.md``: seconds per image of the depth
step, valid pixels before and after the consistency filter, and the track-transfer error at held-out SfM
points (the QA's headline). SfM of the demo photos runs first (``--sfm`` reuses a finished one).

Target (exit status 1 when missed, or when pycolmap has no CUDA): mvs covers at least twice the pixels of
the sparse backend after the filter, with a held-out track-transfer median under 2 px.

    python bench/mvs_depth.py [--sfm results/sacre_coeur/sfm] [--threads 16] [--backends sparse mvs]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import yaml

from matchforge.conf import scene_conf
from matchforge.depth import align, consistency, predict, qa
from matchforge.errors import MatchforgeError
from matchforge.config_check import validate_config

REPO = Path(__file__).resolve().parents[1]
SCENE = "sacre_coeur"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sfm", type=Path, default=None, help="a finished SfM folder of the demo (else it runs here)")
    ap.add_argument("--threads", type=int, default=-1, help="SfM threads (-1 = all cores)")
    ap.add_argument("--backends", nargs="+", default=["sparse", "mvs"])
    ap.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    out = args.out or Path(tempfile.mkdtemp())
    sfm = args.sfm
    if sfm is None:
        from matchforge.sfm.reconstruct import main as sfm_main

        sfm = out / "sfm"
        t = time.perf_counter()
        conf = {**scene_conf(config, SCENE, "sfm"), "num_threads": args.threads}
        stats = sfm_main(conf, REPO / "resources" / "demo" / SCENE / "images", sfm, scene=SCENE)
        print(f"SfM: {stats['num_registered']}/{stats['num_images']} photos, {stats['num_points3D']} points, "
              f"{time.perf_counter() - t:.1f} s")
    rows, failed = {}, []
    for backend in args.backends:
        conf = {**scene_conf(config, SCENE, "depth"), "backend": backend}
        d = out / backend
        try:
            t = time.perf_counter()
            summary = predict.main(conf, sfm, d, scene=SCENE)
            seconds = time.perf_counter() - t
        except MatchforgeError as err:
            failed.append(f"{backend}: {err}")
            continue
        align.main(conf, sfm, d / "raw", d / "aligned", d / "align.json", scene=SCENE)
        kept = consistency.main(conf, sfm, d / "aligned", d / "h5", d / "consistency.json", scene=SCENE)
        result = qa.main(conf, sfm, d / "raw", d / "h5", d / "qa.json", d / "qa.png", scene=SCENE,
                         align_report=d / "align.json", consistency_report=d / "consistency.json")
        rows[backend] = {"s_per_image": seconds / summary["num_images"], "valid_before": kept["scene"]["valid_before"],
                         "valid_after": kept["scene"]["valid_after"], "retained": kept["scene"]["retained"],
                         "holdout": result["track_transfer_holdout"], "all": result["track_transfer"]}
    print("| backend | s per image | valid before filter | valid after | retained | held-out transfer median px "
          "| within 2 px | all-points median px |")
    print("|---|---|---|---|---|---|---|---|")
    for b, r in rows.items():
        h, a = r["holdout"], r["all"]
        print(f"| {b} | {r['s_per_image']:.2f} | {100 * r['valid_before']:.1f} % | {100 * r['valid_after']:.1f} % | "
              f"{100 * r['retained']:.1f} % | {h['median_px']:.2f} | {100 * h['within_2px']:.1f} % | {a['median_px']:.2f} |")
    print(json.dumps(rows, default=float))
    if failed:
        print("FAILED:\n" + "\n".join(failed))
    missed = "mvs" in rows and "sparse" in rows and not (
        rows["mvs"]["valid_after"] >= 2 * rows["sparse"]["valid_after"] and rows["mvs"]["holdout"]["median_px"] < 2.0)
    if missed:
        print("target missed: mvs should cover >= 2x the sparse backend with held-out transfer < 2 px")
    sys.exit(1 if failed or missed else 0)


if __name__ == "__main__":
    main()

"""Multi-view consistency filter: time per image against ``depth_align`` of the same images, and what it keeps.

Runs on the demo scene as the workflow built it (``results/sacre_coeur/sfm`` and ``depth/raw``, from
``snakemake``), in one process: the alignment of every raw map (baseline: ``matchforge align-depth``), then
the filter over the aligned maps (ours: ``matchforge depth-consistency``), each timed end to end with its
reading and H5 writing, best of ``--repeat``; then once more with one image's depth scaled by 1.5.

Target (exit status 1 when missed): the filter costs at most 1x the alignment per image.

    .venv/bin/python bench/depth_consistency.py [--scene sacre_coeur] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

from matchforge.conf import scene_conf
from matchforge.depth import align, consistency
from matchforge.io.depth import read_depth, write_depth
from matchforge.config_check import validate_config

TARGET = 1.0
REPO = Path(__file__).resolve().parents[1]


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="sacre_coeur")
    ap.add_argument("--results", type=Path, default=REPO / "results")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    sfm, raw = args.results / args.scene / "sfm", args.results / args.scene / "depth" / "raw"
    if not raw.is_dir():
        sys.exit(f"{raw} not found: run the demo first (snakemake --cores 2)")
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate_config(config)
    conf = scene_conf(config, args.scene, "depth")
    tmp = Path(tempfile.mkdtemp())
    n = len(list(raw.glob("*.png")))
    t_align = best_of(args.repeat, lambda: align.main(conf, sfm, raw, tmp / "aligned", tmp / "align.json"))
    t_filter = best_of(args.repeat, lambda: consistency.main(conf, sfm, tmp / "aligned", tmp / "h5", tmp / "c.json"))
    report = consistency.main(conf, sfm, tmp / "aligned", tmp / "h5", tmp / "c.json")
    scaled = tmp / "scaled"
    shutil.copytree(tmp / "aligned", scaled)
    victim = sorted(scaled.glob("*.h5"))[n // 3]
    write_depth(victim, read_depth(victim) * 1.5)
    bad = consistency.main(conf, sfm, scaled, tmp / "h5s", tmp / "cs.json")
    others = [e["retained"] for s, e in bad["images"].items() if s != victim.stem]
    ratio = t_filter / t_align
    print(f"scene {args.scene}: {n} images, top_k {conf['consistency']['top_k']}, rel_threshold "
          f"{conf['consistency']['rel_threshold']}, min_views {conf['consistency']['min_views']}")
    print("| step | s per image |\n|---|---|")
    print(f"| depth_align (baseline) | {t_align / n:.3f} |\n| depth_consistency (ours) | {t_filter / n:.3f} |")
    print(f"filter / align: {ratio:.2f}x (target <= {TARGET:.1f}x)")
    print(f"retained: {100 * report['scene']['retained']:.1f} % of valid pixels "
          f"({100 * report['scene']['valid_before']:.1f} % -> {100 * report['scene']['valid_after']:.1f} % of all pixels)")
    print(f"one image x1.5 ({victim.stem}): keeps {100 * bad['images'][victim.stem]['retained']:.1f} %, "
          f"the others {100 * min(others):.1f}-{100 * max(others):.1f} %")
    shutil.rmtree(tmp, ignore_errors=True)
    if ratio > TARGET:
        print("target missed")
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The README's demo promise: the whole default DAG on the bundled scene, from nothing, on 2 cores.

Runs ``snakemake --cores 2`` with the shipped config in a scratch copy of the working directory (as ``make demo``
does, without the report), then prints the wall time against the README's stated figure and the rules that
took longest (Snakemake's own ``benchmark:`` files, ``logs/timings/``). Run it on an idle machine: other load
on the 2 cores shows up one for one.

Target (exit status 1 when missed): wall time <= TARGET_MIN minutes, so that the README's promise of 10 minutes
holds with margin on such machines; the README states the range measured over several runs.

    .venv/bin/python bench/demo_time.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TARGET_MIN = 7.0  # issue 34: 10 minutes with margin on a 2-core machine (the README states the measured range)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="demo_time_"))
    (work / "config").mkdir(parents=True, exist_ok=True)
    (work / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    if not (work / "resources").exists():
        (work / "resources").symlink_to(REPO / "resources")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--cores", str(args.cores), "--workflow-profile", "none", "--quiet", "rules"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"the demo failed:\n{proc.stderr[-4000:]}")
    timings = work / "logs" / "timings"
    rows = [pd.read_csv(f, sep="\t").assign(job=str(f.relative_to(timings).with_suffix("")))
            for f in timings.rglob("*.tsv")]
    table = pd.concat(rows) if rows else pd.DataFrame(columns=["job", "s"])
    print(f"demo DAG on {args.cores} cores: {wall / 60:.1f} min wall ({len(table)} jobs with a benchmark file, "
          f"{table['s'].sum() / 60:.1f} job-minutes); target <= {TARGET_MIN:g} min: ratio {wall / 60 / TARGET_MIN:.2f}")
    print(table.sort_values("s", ascending=False)[["job", "s"]].head(12).round(1).to_string(index=False))
    if wall / 60 > TARGET_MIN:
        print(f"TARGET MISSED: {wall / 60:.1f} min > {TARGET_MIN:g} min")
        sys.exit(1)


if __name__ == "__main__":
    main()

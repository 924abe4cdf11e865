"""CPU time of a no-op `snakemake -n` on the finished demo (issue 33): what every `snakemake` call costs.

    .venv/bin/python bench/plan_noop.py [--runs 3] [--workdir DIR]   # after `make demo` (results/ complete)

Measures the CPU seconds (user + system, the child process) of `snakemake -n` in the repository, nothing to do,
and in the same run the floor: Snakemake alone on a Snakefile with one rule (its imports and plugin registry).
Prints the median of each and what matchforge adds (config parse and validation, the glue, the DAG of the demo).
Target (exit status 1 when missed): the no-op plan uses under 1.5 s of CPU.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 1.5


def cpu_seconds(args: list[str], cwd: Path) -> tuple[float, str]:
    """(CPU seconds of the child, its output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout + proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=REPO,
                    help="a finished demo (default: the repository; e.g. the folder bench/demo_time.py --keep left)")
    args = ap.parse_args()
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    floor_dir = Path(tempfile.mkdtemp())
    (floor_dir / "Snakefile").write_text("rule all:\n    output: 'x'\n    shell: 'touch {output}'\n")
    (floor_dir / "x").touch()
    ours, floor = [], []
    for _ in range(args.runs):
        seconds, said = cpu_seconds([snakemake, "-n", "--cores", "1", "--snakefile", str(REPO / "Snakefile"),
                                     "--directory", str(args.workdir)], args.workdir)
        if "Nothing to be done" not in said:
            sys.exit(f"the demo is not finished (`snakemake -n` plans jobs:\n{said[-1500:]}); run `make demo` first")
        ours.append(seconds)
        floor.append(cpu_seconds([snakemake, "-n", "--cores", "1"], floor_dir)[0])
    o, f = statistics.median(ours), statistics.median(floor)
    print(f"no-op `snakemake -n` on the finished demo: {o:.2f} s CPU (median of {args.runs})")
    print(f"Snakemake alone (one-rule Snakefile):      {f:.2f} s CPU")
    print(f"matchforge's share (config, glue, DAG):    {o - f:.2f} s CPU; ours/floor {o / f:.2f}")
    ok = o < TARGET_S
    print(f"target (< {TARGET_S} s CPU): {'met' if ok else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""A non-editable install (a wheel, as pip or conda would install it) carries everything it needs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from testkit import REPO

STAGES = ["sfm", "depth", "align-depth", "depth-consistency", "depth-qa", "depth-shape", "scene-info", "dataset", "export-gluefactory",
          "loftr-train", "match-pairs", "localization-pairs", "score", "match", "posfeat-train", "extract", "reconstruct-eval", "shiftfocal-data",
          "shiftfocal-train", "shiftfocal-eval", "summarize", "doc-tables", "recover-shape", "config-docs"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package built as a wheel from a copy of the sources and installed into an empty folder."""
    tmp = tmp_path_factory.mktemp("install")
    sources = tmp / "sources"  # setuptools writes build/ and *.egg-info beside the sources: never into the repo
    shutil.copytree(REPO / "src", sources / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, sources / name)
    build = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                            "--target", str(tmp / "site"), str(sources)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": str(tmp / "site")}
    where = subprocess.run([sys.executable, "-c", "import matchforge; print(matchforge.__file__)"],
                           capture_output=True, text=True, env=env, cwd=tmp)
    assert where.stdout.startswith(str(tmp / "site")), where.stdout + where.stderr  # not the source tree
    assert not (REPO / "build").exists()
    return tmp, env


def test_installed_package_has_its_schemas_and_every_command(installed):
    tmp, env = installed
    code = ("from matchforge.config_check import SCHEMA_DIR; from matchforge.config_file import ConfigFile; "
            "c = ConfigFile.of({'scenes': {}}); print(SCHEMA_DIR); print(c.sfm.mapping_threads, c.depth.backend)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    schema_dir, defaults = out.stdout.splitlines()
    assert schema_dir.startswith(str(tmp / "site")) and defaults == "None sparse"
    # every command's --help through the installed CLI entry point, in one interpreter (imports are shared)
    code = ("import contextlib, io, sys\nfrom matchforge.cli import COMMANDS, main\nfailed = []\n"
            "for name in COMMANDS:\n    out = io.StringIO()\n    try:\n        with contextlib.redirect_stdout(out):\n"
            "            main([name, '--help'])\n    except SystemExit as e:\n        if e.code not in (0, None) or 'usage' not in out.getvalue():\n"
            "            failed.append(name)\nprint(sorted(COMMANDS)); print(failed)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    commands, failed = res.stdout.splitlines()[-2:]
    assert commands == str(sorted(STAGES)) and failed == "[]", res.stdout[-2000:]


def test_workflow_plans_with_the_installed_package(installed, tmp_path):
    _, env = installed
    (tmp_path / "resources").symlink_to(REPO / "resources")
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--snakefile", str(REPO / "Snakefile"),
                          "--directory", str(tmp_path), "--configfile", str(REPO / "config" / "config.yaml"),
                          "--workflow-profile", "none"], capture_output=True, text=True, env=env, cwd=REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "sfm" in res.stdout and "loftr_train" in res.stdout and "posfeat_score" in res.stdout and "loftr_localize" in res.stdout

"""A full disk: every writer names the cause and the path, and leaves nothing half-written.

Each case runs in a private mount namespace (``unshare``) with a small tmpfs as the output disk, as a
user would meet it: a real ENOSPC from the kernel, not a mocked exception.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from testkit import DEMO_IMAGES, REPO

def on_small_disk(tmp_path, size_kb: int, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` (Python) with ``DISK`` a fresh tmpfs of ``size_kb`` KiB mounted at tmp_path/disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    (tmp_path / "script.py").write_text(f"DISK = {str(disk)!r}\n" + textwrap.dedent(script))
    userns = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    cmd = ["unshare", *userns, "--mount", "sh", "-c",
           f"mount -t tmpfs -o size={size_kb}k tmpfs {disk} && exec {sys.executable} {tmp_path / 'script.py'}"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)


def test_writers_name_a_full_disk_and_keep_nothing(tmp_path):
    proc = on_small_disk(tmp_path, 256, """
        import json, os
        import numpy as np
        from matchforge.errors import MatchforgeError
        from matchforge.io.depth import write_depth
        from matchforge.io.images import write_image
        from matchforge.io.write import write_json
        rng = np.random.default_rng(0)
        out = {}
        for name, write in [("preview.png", lambda p: write_image(p, rng.integers(0, 255, (800, 800, 3), dtype=np.uint8))),
                            ("depth.h5", lambda p: write_depth(p, rng.random((1000, 1000)).astype(np.float32) + 1)),
                            ("stats.json", lambda p: write_json(p, {"x": "y" * 400_000}))]:
            try:
                write(os.path.join(DISK, name))
                out[name] = "written"
            except MatchforgeError as err:
                out[name] = str(err)
        out["left"] = sorted(os.listdir(DISK))
        print("RESULT " + json.dumps(out))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))[7:])
    for name in ("preview.png", "depth.h5", "stats.json"):
        assert f"no space left on device at {tmp_path / 'disk'}" in result[name], result[name]
        assert name in result[name] and "Fix:" in result[name], result[name]
    assert result["left"] == []  # no partial file, no .part leftover


def test_sfm_refuses_to_start_on_a_disk_too_small(tmp_path):
    """COLMAP aborts in C++ when its database cannot grow; the stage checks the space it needs first."""
    proc = on_small_disk(tmp_path, 2048, f"""
        import os, subprocess, sys
        r = subprocess.run([sys.executable, "-m", "matchforge", "sfm", "--scene", "demo", "--images", {str(DEMO_IMAGES)!r},
                            "--out", os.path.join(DISK, "sfm"), "--num-threads", "1"], capture_output=True, text=True)
        print("CODE", r.returncode)
        print(r.stderr[-2000:])
        for root, dirs, files in os.walk(DISK):
            for f in files:
                print("FILE", os.path.relpath(os.path.join(root, f), DISK), os.path.getsize(os.path.join(root, f)))
    """)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "CODE 2" in out, out[-3000:]
    assert "no space left on device" in out and "SfM of 10 photos" in out and "Fix:" in out, out[-3000:]
    assert "database.db" not in out  # nothing half-written by COLMAP

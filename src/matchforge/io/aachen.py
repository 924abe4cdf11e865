"""The Aachen Day-Night v1.1 localization benchmark's files (the layout hloc's ``pipelines/Aachen_v1_1`` reads).

- ``images/images_upright/``: ``db/*.jpg`` and ``query/{day,night}/...``; image names are paths below it.
- ``3D-models/aachen_v_1_1/``: the database's COLMAP model (cameras, world->camera poses, points).
- ``queries/{day,night}_time_queries_with_intrinsics.txt``: one query per line, ``name MODEL width height
  params...`` (COLMAP camera model and parameters).
- pair lists: ``name0 name1`` per line (database covisibility pairs, query retrieval pairs).
- the submission (:func:`write_submission`): ``name qw qx qy qz tx ty tz`` per query, the world->camera rotation
  as a unit quaternion and the translation, ``name`` the image's file name without its folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from matchforge.errors import MatchforgeError

MODEL = Path("3D-models") / "aachen_v_1_1"
IMAGES = Path("images") / "images_upright"
QUERY_FILES = ("day_time_queries_with_intrinsics.txt", "night_time_queries_with_intrinsics.txt")


def model_dir(root: str | Path) -> Path:
    """The database model folder of an Aachen root, checked."""
    path = Path(root) / MODEL
    if not (path / "images.bin").is_file() and not (path / "images.txt").is_file():
        raise MatchforgeError("no Aachen v1.1 database model (3D-models/aachen_v_1_1/images.bin)", path=path,
                              fix="point at the Aachen Day-Night v1.1 root (the folder holding images/, 3D-models/, queries/)")
    return path


def read_queries(root: str | Path) -> dict[str, Any]:
    """Query name -> ``pycolmap.Camera`` from every ``queries/*_with_intrinsics.txt`` of an Aachen root."""
    import pycolmap

    found = [Path(root) / "queries" / f for f in QUERY_FILES if (Path(root) / "queries" / f).is_file()]
    if not found:
        raise MatchforgeError("no query list with intrinsics", path=Path(root) / "queries",
                              fix=f"the Aachen root needs queries/{QUERY_FILES[0]} (and/or the night list)")
    out = {}
    for path in found:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split()
            try:
                name, model, w, h, params = parts[0], parts[1], int(parts[2]), int(parts[3]), [float(p) for p in parts[4:]]
                out[name] = pycolmap.Camera(model=model, width=w, height=h, params=params)
            except (IndexError, ValueError) as err:
                raise MatchforgeError(f"line {n} is not 'name MODEL width height params...' ({err})", path=path,
                                      fix="use the benchmark's query list unchanged") from None
    return out


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """``(name0, name1)`` of a pair list (one pair per line, blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise MatchforgeError("pair list not found", path=path, fix="give the pairs file (hloc's pairs-*.txt format)")
    return [tuple(line.split()[:2]) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def write_pairs(path: str | Path, pairs: list[tuple[str, str]]) -> None:
    from matchforge.io.write import write_text

    write_text(path, "".join(f"{a} {b}\n" for a, b in pairs), "pair list")


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """(w, x, y, z), w >= 0, of a rotation matrix (COLMAP's convention)."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(R).as_quat()
    q = np.array([w, x, y, z])
    return q if q[0] >= 0 else -q


def write_submission(path: str | Path, poses: Mapping[str, np.ndarray]) -> None:
    """The benchmark's submission: ``name qw qx qy qz tx ty tz`` per query (world->camera 4x4 poses); the name
    is the file name without folders, as the evaluation server expects."""
    from matchforge.io.write import write_text

    lines = []
    for name, T in poses.items():
        q, t = rotation_to_quaternion(np.asarray(T)[:3, :3]), np.asarray(T)[:3, 3]
        lines.append(" ".join([Path(name).name, *(f"{v:.10g}" for v in (*q, *t))]))
    write_text(path, "\n".join(lines) + "\n", "submission")


def read_submission(path: str | Path) -> dict[str, np.ndarray]:
    """File name -> world->camera 4x4 pose of a submission file."""
    from scipy.spatial.transform import Rotation

    out = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            name, *v = line.split()
            w, x, y, z, tx, ty, tz = map(float, v)
            T = np.eye(4)
            T[:3, :3] = Rotation.from_quat([x, y, z, w]).as_matrix()
            T[:3, 3] = [tx, ty, tz]
            out[name] = T
    return out

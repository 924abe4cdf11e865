"""The Aachen Day-Night v1.1 layout built from the real Reichstag photos and their IMC ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from testkit import real_data


def make_aachen(root: Path, queries: int = 3) -> dict[str, Path]:
    """Reichstag in the Aachen v1.1 layout: database images with their IMC poses and intrinsics as the model
    (no points, as hloc's triangulation discards them anyway), the other photos as day queries with intrinsics,
    exhaustive pair lists, and the queries' IMC poses as a ground-truth file in the submission format."""
    import pycolmap

    from matchforge.io import aachen
    from matchforge.io.calibration import ImcScene

    src = real_data("reichstag")
    scene = ImcScene(src)
    stems = sorted(p.stem for p in (src / "images").glob("*.jpg"))
    query_stems = stems[1::3][:queries]
    model = pycolmap.Reconstruction()
    query_lines, truth, names = [], {}, {}
    for k, stem in enumerate(stems, 1):
        K, T = scene.camera(stem)
        w, h = Image.open(scene.image(stem)).size
        camera = pycolmap.Camera(model="PINHOLE", width=w, height=h, params=[K[0, 0], K[1, 1], K[0, 2], K[1, 2]], camera_id=k)
        if stem in query_stems:
            name = f"query/day/nexus5x/{stem}.jpg"
            query_lines.append(f"{name} PINHOLE {w} {h} {K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}")
            truth[name] = T
        else:
            name = f"db/{stem}.jpg"
            model.add_camera_with_trivial_rig(camera)
            model.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=k, image_id=k),
                                               pycolmap.Rigid3d(pycolmap.Rotation3d(T[:3, :3]), T[:3, 3]))
        names[stem] = name
        (root / aachen.IMAGES / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(scene.image(stem), root / aachen.IMAGES / name)
    (root / aachen.MODEL).mkdir(parents=True)
    model.write_binary(str(root / aachen.MODEL))
    (root / "queries").mkdir()
    (root / "queries" / aachen.QUERY_FILES[0]).write_text("\n".join(query_lines) + "\n")
    db = [names[s] for s in stems if s not in query_stems]
    aachen.write_pairs(root / "pairs-db.txt", [(a, b) for i, a in enumerate(db) for b in db[i + 1:]])
    aachen.write_pairs(root / "pairs-query.txt", [(q, d) for q in truth for d in db])
    aachen.write_submission(root / "ground_truth.txt", truth)
    return {"aachen": root, "db_pairs": root / "pairs-db.txt", "query_pairs": root / "pairs-query.txt",
            "ground_truth": root / "ground_truth.txt"}

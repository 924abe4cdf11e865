"""``matchforge depth``: raw depth per undistorted image of a scene (backend ``sparse``, ``depth_anything`` or ``mvs``).

Writes ``<out>/raw/{stem}.png`` (16-bit, invertible, see :mod:`matchforge.depth.rawpng`) at the
undistorted image size and ``<out>/preview/{stem}.jpg``. The model is loaded once per scene and run in
batches; CUDA is used when available.

Scenes without SfM (``single_images``, ``--images`` instead of ``--sfm``): the photos are checked and
staged as for SfM (unreadable ones skipped, EXIF orientation applied) into ``<out>/images/``, depth is
predicted at each photo's size (``depth_anything`` only: ``sparse`` needs SfM points), and
``<out>/inputs.json`` lists the photos used and skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
from tqdm import tqdm

from matchforge.conf import load_conf
from matchforge.depth.common import load_sfm, read_rgb, depth_options
from matchforge.depth.preview import write_preview
from matchforge.errors import MatchforgeError
from matchforge.depth.rawpng import read_raw, write_raw
from matchforge.depth.sparse import densify
from matchforge.io.images import read_image
from matchforge.io.write import atomic_path, read_kept_json, set_aside, write_json

log = logging.getLogger(__name__)


def predict_photos(conf: Mapping[str, Any], images: str | Path, out_dir: str | Path, scene: str | None = None) -> dict:
    """Predict raw depth for every readable photo under ``images`` (no SfM; see the module docstring)."""
    from matchforge.depth.anything import DepthAnything
    from matchforge.sfm.inputs import require_folder, skipped_summary, stage_images

    conf = depth_options(conf)
    images, out_dir = Path(images), Path(out_dir)
    if conf["backend"] != "depth_anything":
        raise MatchforgeError(f"depth backend '{conf['backend']}' needs SfM points, and this scene has no SfM",
                              scene=scene, fix="set depth.backend: depth_anything for this scene (single_images scenes)")
    require_folder(images, scene)
    staged = stage_images(images, out_dir / "images")
    if not staged.names:
        found = f"{staged.num_found} image files found" + (f"; skipped: {skipped_summary(staged.skipped)}" if staged.skipped else "")
        raise MatchforgeError(f"no readable photos ({found})", scene=scene, path=images,
                              fix="put JPEG/PNG photos in this folder")
    raw_dir, preview_dir = out_dir / "raw", out_dir / "preview"
    raw_dir.mkdir(parents=True, exist_ok=True)
    preview_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    net = DepthAnything(conf["depth_anything"])
    meta = {"backend": "depth_anything", "model": net.model_id}

    done: list[str] = []

    def photos() -> Iterator[tuple[str, np.ndarray]]:
        for name in staged.names:
            rgb = read_image(staged.folder / name, required=False)
            if rgb is None:  # decodable by Pillow but not by OpenCV
                staged.skipped.append({"file": name, "reason": "OpenCV cannot decode it"})
                continue
            yield name, rgb

    for name, dmap in tqdm(net.predict(photos()), total=len(staged.names), desc=f"depth {scene or ''}", unit="img"):
        _write(raw_dir, preview_dir, Path(name).stem, dmap, net.kind, meta)
        done.append(name)
    summary = {"scene": scene, "backend": "depth_anything", "kind": net.kind, "num_images": len(done),
               "seconds": round(time.perf_counter() - t0, 3)}
    (out_dir / "inputs.json").write_text(json.dumps({**summary, "images": done, "skipped": staged.skipped,
                                                     "rotated_from_exif": staged.rotated}, indent=1))
    log.info("%s", json.dumps(summary))
    return summary


def main(conf: Mapping[str, Any], sfm_dir: str | Path, out_dir: str | Path, scene: str | None = None) -> dict:
    """Predict raw depth for every registered image of the model in ``sfm_dir`` (``sparse/``, ``images/``).

    Returns a summary dict (also logged): backend, kind, number of images, seconds.
    """
    conf = depth_options(conf)
    if conf["backend"] == "mvs":
        from matchforge.depth.mvs import require_cuda

        require_cuda(scene)  # before anything is read or written
    sfm_dir, out_dir = Path(sfm_dir), Path(out_dir)
    model = load_sfm(sfm_dir, scene)
    raw_dir, preview_dir = out_dir / "raw", out_dir / "preview"
    raw_dir.mkdir(parents=True, exist_ok=True)
    preview_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    backend = conf["backend"]
    views = model.views
    if backend == "sparse":
        kind, meta = "sfm", {"backend": "sparse", "options": conf["sparse"]}
        for name, view in tqdm(views.items(), desc=f"sparse depth {scene or ''}", unit="img"):
            z = model.camera_points(view)[:, 2]
            dmap = densify(view.height, view.width, view.xy, z, conf["sparse"])
            _write(raw_dir, preview_dir, view.stem, dmap, kind, meta, read_rgb(sfm_dir / "images" / name, view, scene))
    elif backend == "depth_anything":
        kind, meta = predict_resumable(conf["depth_anything"], sfm_dir, views, out_dir, scene)
    elif backend == "mvs":
        from matchforge.depth.mvs import patch_match

        kind, meta = "sfm", {"backend": "mvs", "options": conf["mvs"]}
        for name, dmap in tqdm(patch_match(conf["mvs"], sfm_dir, model, out_dir, scene), total=len(views),
                               desc=f"mvs depth {scene or ''}", unit="img"):
            _write(raw_dir, preview_dir, views[name].stem, dmap, kind, meta, read_rgb(sfm_dir / "images" / name, views[name], scene))
    else:  # the schema rejects other values; keep a clear message for hand-written --conf
        raise ValueError(f"unknown depth backend {backend!r}")
    summary = {"scene": scene, "backend": backend, "kind": kind, "num_images": len(views),
               "seconds": round(time.perf_counter() - t0, 3)}
    log.info("%s", json.dumps(summary))
    return summary


def model_fingerprint(model: str) -> str:
    """The hub id, or for a local directory its files' names, sizes and modification times (new weights
    saved into the same directory change it)."""
    local = Path(model).expanduser()
    if not local.is_dir():
        return model
    files = sorted(p for p in local.rglob("*") if p.is_file())
    return json.dumps([str(local.resolve())] + [[str(p.relative_to(local)), p.stat().st_size, p.stat().st_mtime_ns]
                                                for p in files])


def predict_resumable(options: Mapping[str, Any], sfm_dir: Path, views: Mapping[str, Any], out_dir: Path,
                      scene: str | None) -> tuple[str, dict[str, Any]]:
    """Depth-network maps of ``views`` into ``out_dir/raw`` and ``out_dir/preview``, resuming.

    Each map is first written to ``out_dir/work/depth_anything/<key>/{stem}-<image digest>.png`` (``key``:
    the model's fingerprint and the options that change the output; batch size and device do not), a
    folder Snakemake does not delete when a job fails or is requeued: a rerun predicts only the images
    without a map there, and loads no model when there are none. Other keys' folders are removed.
    Returns ``(kind, metadata)`` of the maps."""
    key_fields = {"model": model_fingerprint(str(options["model"])), "kind": options["kind"], "fp16": options["fp16"]}
    key = hashlib.blake2b(json.dumps(key_fields, sort_keys=True).encode(), digest_size=8).hexdigest()
    root = out_dir / "work" / "depth_anything"
    cache = root / key
    if root.is_dir():
        for other in root.iterdir():
            if other.name != key:
                shutil.rmtree(other) if other.is_dir() else other.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    digest = {name: hashlib.blake2b((sfm_dir / "images" / name).read_bytes(), digest_size=8).hexdigest()
              for name in views}
    cached = {name: cache / f"{view.stem}-{digest[name]}.png" for name, view in views.items()}
    info = cache / "info.json"
    saved = read_kept_json(info, lambda v: isinstance(v, dict) and isinstance(v.get("kind"), str)
                           and isinstance(v.get("meta"), dict), f"{scene or 'scene'}: the depth cache's record")
    todo = [name for name in views if saved is None or not cached[name].is_file()]  # atomic writes: a file present is whole
    if len(todo) < len(views):
        log.info("%s: %d of %d depth maps reused from %s (an earlier or interrupted run with this model and options)",
                 scene or "scene", len(views) - len(todo), len(views), cache)
    if todo:
        from matchforge.depth.anything import DepthAnything

        net = DepthAnything(options)
        kind, meta = net.kind, {"backend": "depth_anything", "model": net.model_id}
        write_json(info, {"kind": kind, "meta": meta})

        def images() -> Iterator[tuple[str, np.ndarray]]:
            for name in todo:
                yield name, read_rgb(sfm_dir / "images" / name, views[name], scene)

        for name, dmap in tqdm(net.predict(images()), total=len(todo), desc=f"depth {scene or ''}", unit="img"):
            with atomic_path(cached[name], "depth map") as tmp:
                write_raw(tmp, dmap, kind, **meta)
    saved = json.loads(info.read_text())
    raw_dir, preview_dir = out_dir / "raw", out_dir / "preview"
    for name, view in views.items():
        target = raw_dir / f"{view.stem}.png"
        target.unlink(missing_ok=True)
        try:
            os.link(cached[name], target)  # no second copy on disk
        except OSError:
            shutil.copyfile(cached[name], target)
        try:
            dmap = read_raw(target)[0]
        except Exception as err:  # changed on disk since it was written: predicted again on the rerun
            set_aside(cached[name])
            raise MatchforgeError(f"the cached depth map of {name} does not read ({err}); it was set aside",
                                  scene=scene, path=cached[name], fix="rerun the job: it predicts that map again") from None
        write_preview(preview_dir / f"{view.stem}.jpg", dmap, saved["kind"], None)
    return saved["kind"], saved["meta"]


def _write(raw_dir: Path, preview_dir: Path, stem: str, dmap: np.ndarray, kind: str, meta: dict,
           image: np.ndarray | None = None) -> None:
    write_raw(raw_dir / f"{stem}.png", dmap, kind, **meta)
    write_preview(preview_dir / f"{stem}.jpg", dmap, kind, image)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--sfm", type=Path, help="SfM folder with sparse/ and images/")
    source.add_argument("--images", type=Path, help="folder of photos, for a scene without SfM (single_images)")
    parser.add_argument("--out", required=True, type=Path, help="depth folder; raw/ and preview/ are written in it")
    parser.add_argument("--scene", default=None, help="scene name (for messages)")
    parser.add_argument("--conf", default=None, help="depth options: inline JSON or a YAML file (config/README.md)")


def run(args: argparse.Namespace) -> None:
    if args.images is not None:
        predict_photos(load_conf(args.conf), args.images, args.out, scene=args.scene)
    else:
        main(load_conf(args.conf), args.sfm, args.out, scene=args.scene)

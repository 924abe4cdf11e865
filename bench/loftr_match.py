"""Evaluation matching at the speed of the model: a LoFTR test pair through matchforge's matcher (the code every
test set, localization and ``matchforge match`` use) against kornia's plain LoFTR forward on the same weights, size
and preloaded frames, in the same run.

``ours`` is the whole cost of matching the pairs in order through :class:`matchforge.matchers.loftr.LoFTRMatcher`,
as an evaluation job does: reading and resizing the photos (each once while it stays in the matcher's cache), the
forward in inference mode, the keypoints back to original pixels. ``kornia`` is ``KF.LoFTR(...)`` in eval mode under
``inference_mode`` on the same resized frames, all preloaded on the device. Both run the same dual-softmax weights
(kornia has no optimal-transport matcher). Pairs: the Reichstag test set shipped with the repo (real photos of
different sizes), each photo with the next one (10 pairs over 10 photos, like its co-visible pairs). Each side is
timed as the median of ``--repeats`` passes after a warm-up pass, the matcher's cache emptied before each pass.

Weights: ``--weights`` (default: the demo's trained ``demo_ds`` run, ``results/models/loftr/demo_ds/weights.pt``, so
that the fine level matches what a trained network finds; a random network of the demo's architecture when the demo
has not run). CPU: 480 px, the demo test sets' size; GPU: 840 px. Target (exit status 1 when missed): ours / kornia
<= 1.1.

    .venv/bin/python bench/loftr_match.py [--weights FILE] [--size PX] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET = 1.1


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync()
        t0 = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    from matchforge.io.calibration import ImcScene
    from matchforge.loftr.data import read_gray
    from matchforge.loftr.model import build_model, export_state_dict, load_weights
    from matchforge.matchers.loftr import LoFTRMatcher

    cuda = torch.cuda.is_available()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=REPO / "results" / "models" / "loftr" / "demo_ds" / "weights.pt")
    ap.add_argument("--size", type=int, default=840 if cuda else 480, help="long side (px) the network sees")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    device = "cuda" if cuda else "cpu"

    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if not weights.is_file():
            train = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["loftr"]["train"]
            conf = {"match_type": "dual_softmax", **{k: train[k] for k in ("block_dims", "initial_dim", "coarse_layers")}}
            torch.manual_seed(0)
            weights = Path(tmp) / "weights.pt"
            torch.save(export_state_dict(build_model(conf)), weights)
            print(f"{args.weights} not found (run the demo first): a random network of the demo's architecture")
        ours = LoFTRMatcher({"weights": str(weights), "img_resize": args.size, "pad": False, "device": device})
        plain = load_weights(str(weights), device=device)  # kornia's LoFTR itself (dual softmax): its own forward
    root = REPO / "resources" / "testsets" / "reichstag"
    scene = ImcScene(root)
    stems = sorted(p.stem for p in (root / "images").glob("*.jpg"))
    pairs = [(scene.image(stems[i]), scene.image(stems[(i + 1) % len(stems)])) for i in range(len(stems))]
    frames = {p: read_gray(p, args.size, 8, False, interpolation="linear")[0][None].to(device) for pair in pairs for p in pair}

    def ours_pass() -> int:
        ours.load.cache_clear()
        return sum(len(ours(p0, p1)[0]) for p0, p1 in pairs)

    def kornia_pass() -> int:
        with torch.inference_mode():
            return sum(len(plain({"image0": frames[p0], "image1": frames[p1]})["keypoints0"]) for p0, p1 in pairs)

    t_ours, t_kornia = timed(ours_pass, args.repeats), timed(kornia_pass, args.repeats)
    matches = ours_pass(), kornia_pass()
    ratio = t_ours / t_kornia
    print(f"LoFTR test-pair matching, {device}, weights {args.weights if weights == args.weights else 'random'}, "
          f"{args.size} px, {len(pairs)} Reichstag pairs, median of {args.repeats} passes")
    print(f"ours   {1e3 * t_ours / len(pairs):7.1f} ms per pair ({matches[0]} matches in all)")
    print(f"kornia {1e3 * t_kornia / len(pairs):7.1f} ms per pair ({matches[1]} matches in all)")
    print(f"ours/kornia {ratio:.3f} (target <= {TARGET})")
    if ratio > TARGET:
        print(f"target missed: ours/kornia {ratio:.3f} > {TARGET}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

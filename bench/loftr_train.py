"""LoFTR training throughput on CPU (or GPU when present) for a fixed config, and whether the loader keeps up.

Measures, on the demo dataset's training pairs (``results/datasets/demo/dataset.json``; build it
with ``snakemake --cores 2 results/datasets/demo/dataset.json``):

- loader: pairs/s of the data pipeline alone (read, resize, pad, depth pad, collate), with the
  same number of worker processes as training;
- model: training steps/s (supervision + forward + loss + backward + AdamW step, batch 1);
- peak resident memory of the process.

Prints both rates and their ratio (loader pairs/s / training pairs/s): above 1 the loader keeps up.
Target (exit status 1 when missed): the ratio is at least 1.5 (measured 11-19x on CPU).

    .venv/bin/python bench/loftr_train.py [--dataset results/datasets/demo/dataset.json] [--steps 8]
        [--img-resize 320] [--workers 0] [--full]   # --full: the official architecture instead of the demo's
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from matchforge.dataset.indices import read_dataset  # noqa: E402
from matchforge.loftr.data import PairDataset  # noqa: E402
from matchforge.loftr.losses import LoFTRLoss  # noqa: E402
from matchforge.loftr.model import build_model, forward  # noqa: E402
from matchforge.loftr.supervision import coarse_supervision, fine_supervision  # noqa: E402

DEMO_MODEL = {"block_dims": [32, 48, 64], "initial_dim": 32, "coarse_layers": 2}

LOADER_MARGIN = 1.5


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(REPO / "results/datasets/demo/dataset.json"))
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--img-resize", type=int, default=320)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--match-type", default="dual_softmax", choices=["dual_softmax", "sinkhorn"])
    ap.add_argument("--full", action="store_true", help="official architecture (11.6 M parameters)")
    args = ap.parse_args()
    if not Path(args.dataset).is_file():
        sys.exit(f"{args.dataset} not found: build it first (snakemake --cores 2 results/datasets/demo/dataset.json)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    records = read_dataset(args.dataset, "train", 0.0)
    ds = PairDataset(records, img_resize=args.img_resize, pad=True, depth_max_size=2000, interpolation="linear")
    n = args.steps

    def loader() -> DataLoader:
        return DataLoader(ds, batch_size=1, shuffle=True, num_workers=args.workers, generator=torch.Generator().manual_seed(0))

    it = iter(loader())
    next(it)  # workers started
    t0 = time.perf_counter()
    for _ in range(n):
        try:
            next(it)
        except StopIteration:
            it = iter(loader())
            next(it)
    loader_rate = n / (time.perf_counter() - t0)

    torch.manual_seed(0)
    conf = {"match_type": args.match_type, **({} if args.full else DEMO_MODEL)}
    model = build_model(conf).to(device)
    loss_fn = LoFTRLoss(conf)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = []
    for b in loader():
        batches.append(b)
        if len(batches) == n + 1:
            break

    def step(b: dict) -> None:
        b = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in b.items()}
        coarse_supervision(b, depth_check=False)
        forward(model, b)
        fine_supervision(b)
        loss_fn(b)
        b["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        opt.zero_grad()

    step(batches[0])  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(n):
        step(batches[1 + i % (len(batches) - 1)])
    if device == "cuda":
        torch.cuda.synchronize()
    train_rate = n / (time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in model.parameters())
    print(f"device {device}, torch threads {torch.get_num_threads()}, {len(records)} train pairs, img_resize {args.img_resize}, "
          f"{args.match_type}, {params / 1e6:.2f} M parameters, {args.workers} loader workers, {n} steps")
    print(f"loader (baseline to keep up with): {loader_rate:.2f} pairs/s")
    print(f"training (ours):                  {train_rate:.3f} steps/s = {train_rate:.3f} pairs/s at batch 1")
    print(f"ratio loader / training:          {loader_rate / train_rate:.1f}x ({'keeps up' if loader_rate > train_rate else 'loader-bound'})")
    print(f"peak memory: {peak_mb:.0f} MB resident" + (f", {torch.cuda.max_memory_allocated() / 2**20:.0f} MB GPU" if device == "cuda" else ""))
    ok = loader_rate / train_rate >= LOADER_MARGIN
    print(f"target (loader >= {LOADER_MARGIN}x training): {'met' if ok else 'MISSED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

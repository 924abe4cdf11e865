"""From-scratch LoFTR learning speed: upstream's clamped coarse loss against ``coarse_positive: log``.

Both modes train the same model (same seed, same initial weights, same pairs in the same order, same
optimiser) on the demo dataset's training pairs; every ``--eval-every`` steps the model is run in
eval mode on every training pair and every test pair and we count

- correct coarse matches: mutual nearest neighbours with confidence > 0.2 that are ground-truth
  positives (summed over the pairs; ``matchforge.loftr.model.count_coarse_matches``);
- the relative-pose AUC@5/10/20 of the fine matches (official metric).

Also printed: the share of ground-truth positives whose initial confidence is below the clamp
(1e-6), i.e. that give no gradient in ``clamped`` mode, for dual-softmax and for optimal transport.

Target (checked, exit status 1 when missed): for dual-softmax, ``log`` reaches ``--target-correct``
correct training matches in at most half the steps that ``clamped`` needs (``clamped`` not reaching
it within ``--steps`` counts as ``--steps + 1``).

    .venv/bin/python bench/loftr_learn.py [--dataset results/datasets/demo/dataset.json] [--steps 300]
        [--eval-every 50] [--matchers dual_softmax,sinkhorn] [--official]

Build the dataset first: ``snakemake --cores 2 results/datasets/demo/dataset.json``. ``--official``
(default on a GPU) trains the official architecture at 640 px instead of the demo network at 320 px.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import default_collate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from matchforge.dataset.indices import read_dataset  # noqa: E402
from matchforge.evaluation.pose_metrics import evaluate_pair, pose_auc  # noqa: E402
from matchforge.loftr.data import PairDataset  # noqa: E402
from matchforge.loftr.lightning_module import LoFTRModule  # noqa: E402
from matchforge.loftr.model import count_coarse_matches, forward  # noqa: E402
from matchforge.loftr.supervision import coarse_supervision  # noqa: E402

DEMO_MODEL = {"block_dims": [32, 48, 64], "initial_dim": 32, "coarse_layers": 2}


@torch.no_grad()
def measure(module: LoFTRModule, samples: list[dict], device: str) -> dict[str, float]:
    """Correct coarse matches (sum) and pose AUC over ``samples``, the model in eval mode."""
    module.eval()
    correct, errors = 0, []
    for s in samples:
        b = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in default_collate([s]).items()}
        coarse_supervision(b, depth_check=False)
        forward(module.matcher, b)
        correct += int(count_coarse_matches(b, float(module.conf.thr))[1])
        r = evaluate_pair(b["mkpts0_f"].cpu().double().numpy(), b["mkpts1_f"].cpu().double().numpy(),
                          b["K0"][0].cpu().double().numpy(), b["K1"][0].cpu().double().numpy(),
                          b["T_0to1"][0].cpu().double().numpy(), 0.5, 5e-4, "opencv")
        errors.append(r["pose_error"])
    module.train()
    return {"correct": correct, **pose_auc(errors)}


@torch.no_grad()
def dead_share(module: LoFTRModule, samples: list[dict], device: str) -> float:
    """Share of ground-truth positives with initial confidence < 1e-6 (train-mode forward, as the loss sees it)."""
    below, total = 0, 0
    for s in samples:
        b = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in default_collate([s]).items()}
        coarse_supervision(b, depth_check=False)
        forward(module.matcher, b)
        key = "conf_matrix"
        p = b[key][b["conf_matrix_gt"] == 1]
        below += int((p < 1e-6).sum())
        total += p.numel()
    return below / max(total, 1)


def train(conf: dict, train_s: list[dict], test_s: list[dict], steps: int, every: int, device: str, seed: int,
          target: int) -> tuple[list[dict], float, float]:
    torch.manual_seed(seed)
    module = LoFTRModule(conf).to(device)
    module.train()
    dead = dead_share(module, train_s[:5], device)
    conf = module.conf  # the parsed run config (defaults filled in)
    opt = torch.optim.AdamW(module.parameters(), lr=conf.canonical_lr, weight_decay=conf.weight_decay)
    order = torch.randint(len(train_s), (steps,), generator=torch.Generator().manual_seed(seed)).tolist()
    rows, reached = [], math.inf
    for step in range(steps + 1):
        if step % every == 0:
            tr, te = measure(module, train_s, device), measure(module, test_s, device)
            rows.append({"step": step, "loss_c": float(loss_c) if step else float("nan"), "train_correct": tr["correct"],
                         "train_auc@10": tr["auc@10"], "test_correct": te["correct"], "test_auc@10": te["auc@10"]})
            if tr["correct"] >= target and reached == math.inf:
                reached = step
        if step == steps:
            break
        b = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in default_collate([train_s[order[step]]]).items()}
        module._step(b)
        loss_c = b["loss_scalars"]["loss_c"]
        b["loss"].backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), conf.gradient_clip_val)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return rows, reached, dead


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(REPO / "results/datasets/demo/dataset.json"))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--target-correct", type=int, default=300, help="correct coarse matches over the training pairs")
    ap.add_argument("--matchers", default="dual_softmax,sinkhorn")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--official", action="store_true", default=torch.cuda.is_available(),
                    help="official architecture at 640 px (default on a GPU)")
    args = ap.parse_args()
    if not Path(args.dataset).is_file():
        sys.exit(f"{args.dataset} not found: build it first (snakemake --cores 2 results/datasets/demo/dataset.json)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = 640 if args.official else 320
    arch = {} if args.official else DEMO_MODEL
    train_r, test_r = read_dataset(args.dataset, "train", 0.0), read_dataset(args.dataset, "test", 0.0)
    train_s = list(PairDataset(train_r, img_resize=size, pad=True, depth_max_size=2000, interpolation="linear"))
    test_s = list(PairDataset(test_r, img_resize=size, pad=True, depth_max_size=2000, interpolation="linear"))
    print(f"{len(train_s)} training pairs, {len(test_s)} test pairs, {size} px, "
          f"{'official' if args.official else 'demo'} architecture, {device}, lr {args.lr}, {args.steps} steps")
    failed = False
    for matcher in args.matchers.split(","):
        reached = {}
        for mode in ("clamped", "log"):
            conf = {**arch, "match_type": matcher, "coarse_positive": mode, "canonical_lr": args.lr, "canonical_bs": 1,
                    "warmup_step": 0, "img_resize": size}
            t0 = time.time()
            rows, reached[mode], dead = train(conf, train_s, test_s, args.steps, args.eval_every, device, args.seed,
                                              args.target_correct)
            print(f"\n{matcher} / {mode}: {100 * dead:.1f} % of the initial positives below 1e-6; "
                  f"{time.time() - t0:.0f} s")
            print(f"{'step':>5} {'loss_c':>7} {'train correct':>13} {'train AUC@10':>12} {'test correct':>12} {'test AUC@10':>11}")
            for r in rows:
                print(f"{r['step']:5d} {r['loss_c']:7.3f} {r['train_correct']:13d} {r['train_auc@10']:12.1f} "
                      f"{r['test_correct']:12d} {r['test_auc@10']:11.1f}")
        fmt = {m: ("not within %d" % args.steps) if v == math.inf else str(v) for m, v in reached.items()}
        ratio = reached["log"] / (reached["clamped"] if reached["clamped"] != math.inf else args.steps + 1)
        print(f"\n{matcher}: steps to {args.target_correct} correct training matches: clamped {fmt['clamped']}, "
              f"log {fmt['log']} (ratio {ratio:.2f})")
        if matcher == "dual_softmax":
            ok = ratio <= 0.5
            failed |= not ok
            print(f"target (log <= 0.5 x clamped): {'met' if ok else 'MISSED'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

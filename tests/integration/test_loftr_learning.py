"""From-scratch LoFTR learning (issue 15): the clamped coarse loss gives positives below 1e-6 no gradient,
``coarse_positive: log`` does, and learns correct matches in fewer steps on a real pair (TUM fr1)."""

from __future__ import annotations

import torch
from torch.utils.data import default_collate
from matchforge.loftr.data import PairDataset
from matchforge.loftr.model import count_coarse_matches, forward
from matchforge.loftr.supervision import coarse_supervision


DEMO_NET = {"block_dims": [32, 48, 64], "initial_dim": 32, "coarse_layers": 2}


def _train_on_demo(mode: str, samples: list, order: list[int], every: int) -> tuple[list[float], list[int]]:
    """(loss_c per step, correct coarse matches over the first 5 training pairs every ``every`` steps)."""
    from matchforge.loftr.lightning_module import LoFTRModule

    torch.manual_seed(0)
    module = LoFTRModule({**DEMO_NET, "coarse_positive": mode, "img_resize": 320})
    opt = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=0.1)
    losses, correct = [], []
    for step, i in enumerate(order + [None]):
        if step % every == 0:
            module.eval()
            with torch.no_grad():
                n = 0
                for s in samples[:5]:
                    e = forward(module.matcher, coarse_supervision(default_collate([s]), depth_check=False))
                    n += int(count_coarse_matches(e, 0.2)[1])
            correct.append(n)
            module.train()
        if i is None:
            break
        b = default_collate([samples[i]])
        module._step(b)
        b["loss"].backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 0.5)
        opt.step()
        opt.zero_grad()
        losses.append(float(b["loss_scalars"]["loss_c"]))
    return losses, correct


def test_log_mode_learns_the_demo_pairs_while_clamped_is_stuck(demo_dataset):
    """The setting of the issue: demo network, 320 px, the demo's training pairs, AdamW 1e-3, same seed and order.
    At initialisation every positive is below 1e-6, so the clamped loss cannot move its positive terms."""
    from matchforge.dataset.indices import read_dataset

    samples = list(PairDataset(read_dataset(demo_dataset, "train", 0.0), img_resize=320, depth_max_size=2000, pad=True, interpolation="linear"))
    order = torch.randint(len(samples), (80,), generator=torch.Generator().manual_seed(0)).tolist()
    log_loss, log_correct = _train_on_demo("log", samples, order, 80)
    # the clamped run stays at the clamp for all 80 steps with 0 correct matches (runs of 2026-12-07); its
    # first 20 steps show it, while log only starts matching after ~40 steps (0, 0, 0, 20, 31 every 20 steps)
    clamped_loss, clamped_correct = _train_on_demo("clamped", samples, order[:20], 20)
    clamp_value = -0.25 * torch.log(torch.tensor(1e-6)).item()  # every positive at the clamp
    stuck = [abs(v - clamp_value) < 0.05 for v in clamped_loss[:20]]
    assert sum(stuck) >= 17, " ".join(f"{v:.3f}" for v in clamped_loss[:20])
    assert sum(log_loss[-10:]) / 10 < 0.5 * log_loss[0], log_loss
    # correct coarse matches over the 5 pairs after the 80 steps: log has learned, clamped none after 20. CPU training
    # is not bit-reproducible (thread reductions), so the log count varies from run to run: 10, 26, 36 and 55 in four
    # runs, clamped 0; hence a low floor and a ratio rather than "30 by step 80".
    assert log_correct[-1] >= 5 and log_correct[-1] >= 3 * max(clamped_correct[-1], 1), (log_correct, clamped_correct)

"""Log-domain Sinkhorn optimal transport with a learnable dustbin (LoFTR-OT's coarse matcher).

The score matrix (N, L, S) is augmented with one dustbin row and one dustbin column, all holding
the learnable scalar ``alpha``. Row marginals are 1 for every real row and S for the dustbin row,
column marginals 1 for every real column and L for the dustbin column, so both sum to L + S.
Sinkhorn iterations alternate row and column normalisation in log space. The result is a log
assignment matrix (N, L+1, S+1), shifted so that every real row sums (in probability) to about 1.
"""

from __future__ import annotations

from typing import Any

import torch
from kornia.feature.loftr.utils.coarse_matching import CoarseMatching
from torch import nn


def log_optimal_transport(scores: torch.Tensor, alpha: torch.Tensor, iters: int) -> torch.Tensor:
    """Entropic optimal transport of ``scores`` (N, L, S) with a dustbin of score ``alpha``.

    Args:
        scores: similarity logits (already divided by any temperature).
        alpha: scalar dustbin score (a learnable ``nn.Parameter``).
        iters: number of Sinkhorn iterations.

    Returns:
        (N, L+1, S+1) log assignment; ``exp`` of the top-left (L, S) block is the match probability.
    """
    n, L, S = scores.shape
    dtype, device = scores.dtype, scores.device
    bin_col = alpha.to(dtype).expand(n, L, 1)
    bin_row = alpha.to(dtype).expand(n, 1, S)
    corner = alpha.to(dtype).expand(n, 1, 1)
    couplings = torch.cat([torch.cat([scores, bin_col], -1), torch.cat([bin_row, corner], -1)], 1)

    total = torch.tensor(float(L + S), dtype=dtype, device=device)
    log_norm = -total.log()
    log_mu = torch.cat([log_norm.expand(L), (torch.tensor(float(S), dtype=dtype, device=device).log() + log_norm)[None]])
    log_nu = torch.cat([log_norm.expand(S), (torch.tensor(float(L), dtype=dtype, device=device).log() + log_norm)[None]])
    log_mu, log_nu = log_mu[None].expand(n, -1), log_nu[None].expand(n, -1)

    u = torch.zeros_like(log_mu)
    v = torch.zeros_like(log_nu)
    for _ in range(iters):
        u = log_mu - torch.logsumexp(couplings + v[:, None, :], dim=2)
        v = log_nu - torch.logsumexp(couplings + u[:, :, None], dim=1)
    # undo the 1/(L+S) normalisation: real rows then carry unit mass
    return couplings + u[:, :, None] + v[:, None, :] - log_norm


class SinkhornCoarseMatching(CoarseMatching):
    """kornia's ``CoarseMatching`` with its optimal-transport matcher (``match_type: sinkhorn``) backed by
    :func:`log_optimal_transport`.

    kornia's own class imports the Sinkhorn from a ``superglue`` module it does not ship (the upstream file's
    licence forbids copying); this subclass supplies it, with the same attributes and parameter as kornia's
    (``bin_score``, whose state-dict key ``coarse_matching.bin_score`` matches the official LoFTR-OT
    checkpoints). Everything else, the forward pass included, is kornia's."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__({**config, "match_type": "dual_softmax"})  # the parent's sinkhorn branch would import
        self.config = config
        self.match_type = "sinkhorn"
        del self.temperature
        self.log_optimal_transport = log_optimal_transport
        self.bin_score = nn.Parameter(torch.tensor(config["skh_init_bin_score"], requires_grad=True))
        self.skh_iters = config["skh_iters"]
        self.skh_prefilter = config["skh_prefilter"]

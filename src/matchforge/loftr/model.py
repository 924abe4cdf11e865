"""LoFTR model: kornia's modules, configured from matchforge options, with a forward pass that trains.

``build_model`` returns a plain ``kornia.feature.LoFTR(pretrained=None, config=...)`` (for OT with
:class:`~matchforge.loftr.sinkhorn.SinkhornCoarseMatching` as its ``coarse_matching``), so its state
dict has exactly the names of kornia and of the official checkpoints. ``forward`` runs the same
sub-modules as kornia's ``LoFTR.forward`` but on one shared ``data`` dict, as the official code does:
the coarse matcher then sees the coarse padding masks, the image scales and the ground-truth
ids (``spv_*``) that its training branch pads the fine level with, and the caller gets back
``conf_matrix``, ``expec_f`` and the match ids that the losses need.

Image conventions: ``image0/1`` (N, 1, H, W) grayscale in [0, 1], H and W multiples of 8;
``mask0/1`` (N, H/8, W/8) bool, False on padding; ``scale0/1`` (N, 2) = original size / resized
size (x, y). Output keypoints ``mkpts0_f/mkpts1_f`` are pixels of the *original* images, in the
official frame (coarse cell (x, y) sits on pixel 8 * (x, y) * scale).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Mapping

import torch
from kornia.feature import LoFTR
from kornia.feature.loftr.loftr import default_cfg

from matchforge.errors import MatchforgeError
from matchforge.io.safe import load_torch
from matchforge.loftr import PRETRAINED
from matchforge.loftr.sinkhorn import SinkhornCoarseMatching
from matchforge.loftr.config import LoFTRRunConfig, LoFTRTrain

MATCH_TYPES = {"dual_softmax": "dual_softmax", "ds": "dual_softmax", "sinkhorn": "sinkhorn", "ot": "sinkhorn"}


def run_options(conf: LoFTRRunConfig | Mapping[str, Any] | None = None) -> LoFTRRunConfig:
    """A LoFTR run's options as the typed config :class:`matchforge.loftr.config.LoFTRRunConfig`: a parsed one comes
    back as is (a training parses its options once), a mapping is checked and completed with the defaults there.

    Those defaults are the official training values (``temp_bug_fix`` true, ``skh_prefilter`` false,
    ``train_coarse_percent`` 0.3), so a model built without options never inherits kornia's inference defaults
    (``skh_prefilter`` true, ``train_coarse_percent`` 0.4). ``match_type`` may also be given as ``ds`` or ``ot``.
    """
    if isinstance(conf, Mapping) and conf.get("match_type") in MATCH_TYPES:
        conf = {**conf, "match_type": MATCH_TYPES[conf["match_type"]]}
    return LoFTRRunConfig.of(conf)


def kornia_config(model_conf: LoFTRRunConfig | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """kornia LoFTR config from matchforge run options; every option ``model_conf`` leaves out takes its
    default from :class:`matchforge.loftr.config.LoFTRTrain`, none comes from kornia's ``default_cfg``.

    Options: ``match_type`` (dual_softmax|sinkhorn, aliases ds|ot), ``temp_bug_fix``,
    ``coarse_layers`` (number of self+cross pairs, 4 upstream), ``block_dims`` ([128, 196, 256]
    upstream; the coarse/fine transformer widths follow the last/first entry), ``initial_dim``,
    ``nhead``, ``thr``, ``border_rm``, ``dsmax_temperature``, ``skh_iters``,
    ``skh_init_bin_score``, ``skh_prefilter``, ``sparse_spvs``, ``train_coarse_percent``,
    ``train_pad_num_gt_min``.
    """
    conf = run_options(model_conf)
    cfg = copy.deepcopy(default_cfg)
    mc = cfg["match_coarse"]
    mc["match_type"] = conf.match_type
    for key in ("thr", "border_rm", "dsmax_temperature", "skh_iters", "skh_init_bin_score", "skh_prefilter",
                "train_coarse_percent", "train_pad_num_gt_min", "sparse_spvs"):
        mc[key] = getattr(conf, key)
    cfg["coarse"]["temp_bug_fix"] = bool(conf.temp_bug_fix)
    dims = list(conf.block_dims)
    cfg["resnetfpn"]["block_dims"] = dims
    cfg["resnetfpn"]["initial_dim"] = int(conf.initial_dim)
    cfg["coarse"]["d_model"] = cfg["coarse"]["d_ffn"] = dims[-1]
    cfg["fine"]["d_model"] = cfg["fine"]["d_ffn"] = dims[0]
    cfg["coarse"]["layer_names"] = ["self", "cross"] * int(conf.coarse_layers)
    cfg["coarse"]["nhead"] = cfg["fine"]["nhead"] = int(conf.nhead)
    return cfg


def build_model(model_conf: LoFTRRunConfig | Mapping[str, Any] | None = None) -> LoFTR:
    """A randomly initialised kornia LoFTR (train mode) for ``model_conf`` (see :func:`kornia_config`)."""
    cfg = kornia_config(model_conf)
    if cfg["match_coarse"]["match_type"] != "sinkhorn":
        return LoFTR(pretrained=None, config=cfg)
    dual = copy.deepcopy(cfg)
    dual["match_coarse"]["match_type"] = "dual_softmax"
    model = LoFTR(pretrained=None, config=dual)
    model.config = cfg
    model.coarse_matching = SinkhornCoarseMatching(cfg["match_coarse"])
    return model


MASKED_LOGIT = -1e9  # similarity of padded cells: finite, so a fully padded row keeps a uniform softmax, as kornia


def coarse_log_confidence(matcher: Any, feat_c0: torch.Tensor, feat_c1: torch.Tensor, mask_c0: torch.Tensor | None = None,
                          mask_c1: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log match probabilities of the coarse matcher, computed in the log domain in float32.

    Args:
        matcher: kornia's ``CoarseMatching`` (its temperature, dustbin score and Sinkhorn settings are used).
        feat_c0, feat_c1: transformed coarse features (N, L, C), (N, S, C).
        mask_c0, mask_c1: (N, L), (N, S) bool, False on padding.

    Returns:
        ``log_conf`` (N, L, S), ``-inf`` on padded cells. Dual-softmax: ``log_softmax`` of the
        similarity over both axes, summed (the log of kornia's ``softmax * softmax``). OT: the top-left
        block of the log assignment. Second: the OT log assignment with dustbins (N, L+1, S+1), else None.
        Unlike ``conf.log()``, no probability underflows or is clamped, in any autocast precision.
    """
    c = feat_c0.shape[-1]
    sim = torch.einsum("nlc,nsc->nls", feat_c0, feat_c1).float() / c  # (f0 / sqrt C) . (f1 / sqrt C)
    invalid = None
    if mask_c0 is not None:
        invalid = ~mask_c0.bool()[..., None]
    if mask_c1 is not None:
        invalid = ~mask_c1.bool()[:, None] if invalid is None else invalid | ~mask_c1.bool()[:, None]
    if matcher.match_type == "dual_softmax":
        sim = sim / matcher.temperature
        if invalid is not None:
            sim = sim.masked_fill(invalid, MASKED_LOGIT)
        log_conf, with_bin = sim.log_softmax(1) + sim.log_softmax(2), None
    else:
        if invalid is not None:
            sim = sim.masked_fill(invalid, MASKED_LOGIT)
        with_bin = matcher.log_optimal_transport(sim, matcher.bin_score.float(), matcher.skh_iters)
        log_conf = with_bin[:, :-1, :-1]
    if invalid is not None:
        log_conf = log_conf.masked_fill(invalid, float("-inf"))
    return log_conf, with_bin


def coarse_matching(matcher: Any, feat_c0: torch.Tensor, feat_c1: torch.Tensor, data: dict[str, Any],
                    mask_c0: torch.Tensor | None = None, mask_c1: torch.Tensor | None = None) -> None:
    """kornia's ``CoarseMatching.forward`` with the confidences from :func:`coarse_log_confidence`.

    Adds ``log_conf_matrix`` and ``conf_matrix`` (its ``exp``), for sparse OT also
    ``conf_matrix_with_bin`` / ``log_conf_matrix_with_bin``, then kornia's coarse matches
    (``get_coarse_match``: threshold, border, mutual nearest neighbours, ground-truth pads in training).
    """
    log_conf, with_bin = coarse_log_confidence(matcher, feat_c0, feat_c1, mask_c0, mask_c1)
    conf = log_conf.exp()
    if with_bin is not None:
        if not matcher.training and matcher.skh_prefilter:  # drop cells whose best assignment is a dustbin
            L, S = conf.shape[1:]
            to_bin0 = (with_bin.argmax(2) == S)[:, :-1]
            to_bin1 = (with_bin.argmax(1) == L)[:, :-1]
            conf = conf.masked_fill(to_bin0[..., None] | to_bin1[:, None], 0.0)
        if matcher.config["sparse_spvs"]:
            data.update(conf_matrix_with_bin=with_bin.exp(), log_conf_matrix_with_bin=with_bin)
    data.update(conf_matrix=conf, log_conf_matrix=log_conf)
    data.update(**matcher.get_coarse_match(conf, data))


@torch.no_grad()
def count_coarse_matches(data: dict[str, Any], thr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted, correct) coarse matches as 0-d tensors on the device (reading them waits for the device, so a
    training step logs them as tensors): mutual nearest neighbours of ``conf_matrix`` above ``thr``, correct where
    ``conf_matrix_gt`` is 1. Border cells are kept and no ground-truth pad counts, so the numbers do not depend on
    the training-time subsampling of the fine level."""
    conf = data["conf_matrix"].detach()
    mutual = (conf > thr) & (conf == conf.amax(2, keepdim=True)) & (conf == conf.amax(1, keepdim=True))
    correct = mutual & (data["conf_matrix_gt"] == 1) if "conf_matrix_gt" in data else mutual[:0]
    return mutual.sum(), correct.sum()


def forward(model: LoFTR, data: dict[str, Any], for_loss: bool = True) -> dict[str, Any]:
    """Run LoFTR on ``data`` in place (train or eval mode, as the model is) and return ``data``.

    In train mode ``data`` must already hold the coarse supervision (``spv_b_ids``, ...), see
    :func:`matchforge.loftr.supervision.coarse_supervision`. Adds ``conf_matrix``,
    ``log_conf_matrix`` (see :func:`coarse_matching`), ``b_ids``,
    ``i_ids``, ``j_ids``, ``gt_mask``, ``mkpts0_c/1_c``, ``mconf``, ``m_bids``, ``expec_f``,
    ``mkpts0_f/1_f``.

    ``for_loss`` false (matching only, nothing reads a loss): a dual-softmax model runs kornia's own coarse matching,
    the released inference code, without the log-domain confidences only the loss needs (``log_conf_matrix`` is
    then absent); the matches are kornia's.
    """
    stride_c, stride_f = model.config["resolution"]
    img0, img1 = data["image0"], data["image1"]
    n = img0.size(0)
    data.update(bs=n, stride_c=stride_c, stride_f=stride_f, hw0_i=img0.shape[2:], hw1_i=img1.shape[2:])
    if img0.shape[2:] == img1.shape[2:]:
        feat_c, feat_f = model.backbone(torch.cat([img0, img1], 0))
        (feat_c0, feat_c1), (feat_f0, feat_f1) = feat_c.split(n), feat_f.split(n)
    else:
        (feat_c0, feat_f0), (feat_c1, feat_f1) = model.backbone(img0), model.backbone(img1)
    data.update(hw0_c=feat_c0.shape[2:], hw1_c=feat_c1.shape[2:], hw0_f=feat_f0.shape[2:], hw1_f=feat_f1.shape[2:])

    feat_c0 = model.pos_encoding(feat_c0).flatten(2).transpose(1, 2).contiguous()
    feat_c1 = model.pos_encoding(feat_c1).flatten(2).transpose(1, 2).contiguous()
    mask_c0 = data["mask0"].flatten(-2) if "mask0" in data else None
    mask_c1 = data["mask1"].flatten(-2) if "mask1" in data else None
    feat_c0, feat_c1 = model.loftr_coarse(feat_c0, feat_c1, mask_c0, mask_c1)

    if for_loss or model.coarse_matching.match_type != "dual_softmax":
        coarse_matching(model.coarse_matching, feat_c0, feat_c1, data, mask_c0, mask_c1)
    else:
        model.coarse_matching(feat_c0, feat_c1, data, mask_c0=mask_c0, mask_c1=mask_c1)

    feat_f0_w, feat_f1_w = model.fine_preprocess(feat_f0, feat_f1, feat_c0, feat_c1, data)
    if feat_f0_w.size(0) != 0:
        feat_f0_w, feat_f1_w = model.loftr_fine(feat_f0_w, feat_f1_w)
    model.fine_matching(feat_f0_w, feat_f1_w, data)
    return data


def export_state_dict(model: LoFTR) -> dict[str, torch.Tensor]:
    """CPU copy of the model's state dict, with kornia's/official names (no ``matcher.`` prefix)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


# options the released kornia weights were trained with (indoor_new: the fixed positional encoding)
PRETRAINED_CONF: dict[str, dict[str, Any]] = {
    "outdoor": {"match_type": "dual_softmax", "temp_bug_fix": False},
    "indoor": {"match_type": "dual_softmax", "temp_bug_fix": False},
    "indoor_new": {"match_type": "dual_softmax", "temp_bug_fix": True},
}
# architecture options that show in a state dict, and what the weights say about each
ARCHITECTURE = ("match_type", "initial_dim", "block_dims", "coarse_layers")


def read_weights(weights: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict with kornia's names, options known from the weights' source).

    ``weights``: a kornia pretrained name (``outdoor``, ``indoor``, ``indoor_new``; downloaded once
    into torch's hub cache), or a file: a matchforge ``weights.pt`` (options from the ``model.json``
    beside it), a matchforge training checkpoint (``last.ckpt``, options inside) or an official
    LoFTR Lightning checkpoint (``state_dict`` with ``matcher.`` prefixes; options unknown). The known
    options always include what the state dict shows (:data:`ARCHITECTURE`).
    """
    from kornia.core.download import load_state_dict_from_url
    from kornia.feature.loftr.loftr import urls

    known: dict[str, Any] = {}
    path = Path(weights)
    if str(weights) in PRETRAINED and not path.exists():
        try:
            blob = load_state_dict_from_url(urls[str(weights)], map_location="cpu")
        except Exception as err:  # noqa: BLE001 - offline or blocked download
            raise MatchforgeError(f"could not download kornia's pretrained LoFTR '{weights}' ({err.__class__.__name__}: "
                                  f"{str(err).splitlines()[0] if str(err) else ''})",
                                  fix="run once with network access (the weights are cached by torch.hub, see TORCH_HOME), "
                                      "or download the official checkpoint and give its path") from None
        known.update(PRETRAINED_CONF[str(weights)])
    elif path.is_file():
        blob = load_torch(path, "LoFTR weights")
        if isinstance(blob, dict) and isinstance(blob.get("hyper_parameters"), dict) and "conf" in blob["hyper_parameters"]:
            known.update(blob["hyper_parameters"]["conf"])  # our Lightning checkpoint
        elif path.with_name("model.json").is_file():
            known.update(json.loads(path.with_name("model.json").read_text()).get("conf") or {})
    else:
        raise MatchforgeError("LoFTR weights not found", path=path,
                              fix=f"give a file written by `matchforge loftr-train` (weights.pt, checkpoints/last.ckpt), an "
                                  f"official LoFTR checkpoint, one of {', '.join(PRETRAINED)}, or (in the workflow's "
                                  f"init_weights) the name of another run under loftr.runs")
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
    if not isinstance(state, dict) or "backbone.conv1.weight" not in {k.removeprefix("matcher.") for k in state}:
        raise MatchforgeError("the file holds no LoFTR state dict", path=path,
                              fix="give a weights.pt or last.ckpt written by matchforge, or an official LoFTR .ckpt")
    state = {k.removeprefix("matcher."): v for k, v in state.items() if not k.startswith("loss.")}
    known.update(architecture_of(state))
    return state, known


def architecture_of(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The :data:`ARCHITECTURE` options a LoFTR state dict was built with."""
    layers = {k.split(".")[2] for k in state if k.startswith("loftr_coarse.layers.")}
    return {
        "match_type": "sinkhorn" if "coarse_matching.bin_score" in state else "dual_softmax",
        "initial_dim": int(state["backbone.conv1.weight"].shape[0]),
        "block_dims": [int(state[f"backbone.layer{i}.0.conv2.weight"].shape[0]) for i in (1, 2, 3)],
        "coarse_layers": len(layers) // 2,
    }


def fit_architecture(known: Mapping[str, Any], conf: LoFTRRunConfig | Mapping[str, Any], where: str,
                     what: str) -> dict[str, Any]:
    """The architecture options of the weights ``what`` that the run must take: where ``conf`` leaves an
    :data:`ARCHITECTURE` option at its default, the weights' value; where it sets another value that
    differs from the weights', an error naming **every** such option at once.

    ``where``: the config path of the options (``loftr.runs.<run>.train``), ``what``: the weights (for the message).
    """
    defaults = LoFTRTrain()
    taken, conflicts = {}, []
    for key in ARCHITECTURE:
        mine = getattr(run_options(conf), key)
        if key not in known or known[key] == mine:
            continue
        if mine == getattr(defaults, key):
            taken[key] = known[key]
        else:
            conflicts.append(f"{key} = {known[key]} (the run sets {mine})")
    if conflicts:
        raise MatchforgeError(f"the weights {what} have {'; '.join(conflicts)}",
                              fix=f"remove {', '.join(c.split(' = ')[0] for c in conflicts)} from {where} (the weights' "
                                  "values are then used), set the weights' values, or start from weights of this architecture")
    return taken


def load_weights(weights: str, model_conf: Mapping[str, Any] | None = None, device: str | torch.device = "cpu") -> LoFTR:
    """An eval-mode LoFTR from a weights file or a kornia pretrained name (see :func:`read_weights`).

    Options come from the weights' source where it records them (matchforge files, kornia names),
    else from ``model_conf`` (``thr`` of ``model_conf`` always wins), and the model defaults for the rest;
    the architecture is read from the state dict.
    """
    state, known = read_weights(weights)
    conf = {**dict(model_conf or {}), **known}
    if model_conf and model_conf.get("thr") is not None:
        conf["thr"] = model_conf["thr"]
    model = build_model(_model_options(conf))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise MatchforgeError(f"weights do not fit the LoFTR architecture: {str(err).splitlines()[0]}", path=str(weights),
                              fix="use the model options the weights were trained with (nhead, ...)") from None
    return model.to(device).eval()


def _model_options(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The run options that the schema knows (a checkpoint's summary may carry more)."""
    return {k: v for k, v in conf.items() if k in LoFTRRunConfig.model_fields}

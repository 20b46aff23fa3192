"""MobileNetV2 features with torchvision's module names, built up to its last used layer."""

from __future__ import annotations

import os

import torch
from torch import nn

from engine.models.layers import load_built_layers, read_state_dict

# (expansion t, output channels c, repeats n, first stride s) of the ImageNet network.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU6; children named ``0``, ``1``, ``2`` as in torchvision."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1×1) → depthwise 3×3 → project (1×1, linear), with a skip when shapes allow.

    Shape:
        - input: :math:`(N, C_{in}, H, W)`
        - output: :math:`(N, C_{out}, H/s, W/s)`
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_ch * expand_ratio
        self.use_skip = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_skip else y


class MobileNetV2Features(nn.Module):
    """MobileNetV2's ``features`` with torchvision's names, built up to the last tap.

    Layer ``i`` of ``features`` has the same name and parameter shapes as in torchvision, so
    the official ImageNet checkpoint loads by key. Layers after the last tap are not built:
    DeblurGAN-v2's FPN taps the network at layer 15 (160 channels, 1/32 resolution).

    Args:
        taps: exclusive end indices of ``features`` whose activations ``forward`` returns,
            increasing (at most 19: the 1×1 head is layer 18).

    Shape:
        - input: :math:`(N, 3, H, W)`
        - output: one map per tap (the FPN taps: 16, 24, 32, 64, 160 channels at
          1/2 … 1/32)
    """

    def __init__(self, taps: tuple[int, ...] = (2, 4, 7, 11, 16)) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBNReLU6(3, 32, stride=2)]
        in_ch = 32
        for t, c, n, s in INVERTED_RESIDUAL_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(in_ch, c, s if i == 0 else 1, t))
                in_ch = c
        layers.append(ConvBNReLU6(in_ch, 1280, kernel=1))
        if list(taps) != sorted(set(taps)) or not taps[0] >= 1 or taps[-1] > len(layers):
            raise ValueError(f"taps must increase within 1..{len(layers)}, got {taps}")
        self.taps = tuple(taps)
        self.features = nn.Sequential(*layers[: taps[-1]])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        start = 0
        for end in self.taps:
            for layer in self.features[start:end]:
                x = layer(x)
            outputs.append(x)
            start = end
        return outputs

    def load_imagenet_weights(self, path: str | os.PathLike) -> None:
        """Load torchvision's ImageNet MobileNetV2 checkpoint into the layers that are built.

        Every parameter and buffer of the built layers must be present with the right shape;
        keys of layers that are not built (later ``features``, ``classifier``) are ignored.

        Args:
            path: a ``.pth`` state dict with torchvision key names.

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: keys are missing or shapes differ, with the offending names.
        """
        built = len(self.features)

        def unbuilt(key: str) -> bool:
            head, _, rest = key.partition(".")
            if head == "classifier":
                return True
            index = rest.partition(".")[0]
            return head == "features" and index.isdigit() and int(index) >= built

        state = read_state_dict(path, "MobileNetV2 weights")
        load_built_layers(self, state, "a torchvision MobileNetV2 ImageNet checkpoint", unbuilt)

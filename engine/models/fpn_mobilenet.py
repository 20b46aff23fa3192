"""DeblurGAN-v2 generator on MobileNetV2: FPN-MobileNet and its depthwise-separable variant."""

from __future__ import annotations

import os

from engine.models.fpn import FPNGenerator
from engine.models.mobilenet_v2 import MobileNetV2Features

# Exclusive end indices of MobileNetV2.features for the five taps enc0..enc4
# (16 ch at 1/2, 24 at 1/4, 32 at 1/8, 64 at 1/16, 160 at 1/32).
_TAPS = (2, 4, 7, 11, 16)
_TAP_CHANNELS = (16, 24, 32, 64, 160)


class FPNMobileNet(FPNGenerator):
    """The DeblurGAN-v2 generator with a MobileNetV2 backbone (FPN-MobileNet).

    With ``separable=True`` every k×k convolution outside the backbone (top-down, heads,
    smoothing, final) is depthwise-separable: the paper's MobileNet-DSC, the real-time default
    (≈1.19 M parameters instead of 2.1 M, ≈4× fewer MACs). Only MobileNetV2 layers 0–15 are
    built; later layers are never tapped.

    Args:
        separable: build MobileNet-DSC instead of the dense FPN.
        norm: ``"batch"`` (default), ``"instance"`` (upstream) or ``"none"``.
        num_filters: channels of the heads (64 upstream).
        num_filters_fpn: channels of the pyramid (128 upstream).
        backbone_weights: optional torchvision ImageNet MobileNetV2 checkpoint to load.
        return_all: kept for interface symmetry; this network has one output.

    Shape:
        - input: :math:`(N, 3, H, W)` in [-1, 1], any H and W
        - output: :math:`(N, 3, H, W)` in [-1, 1]
    """

    def __init__(
        self,
        separable: bool = False,
        norm: str = "batch",
        num_filters: int = 64,
        num_filters_fpn: int = 128,
        backbone_weights: str | os.PathLike | None = None,
        return_all: bool = False,
    ) -> None:
        backbone = MobileNetV2Features(taps=_TAPS)
        if backbone_weights is not None:
            backbone.load_imagenet_weights(backbone_weights)
        super().__init__(
            backbone,
            _TAP_CHANNELS,
            fpn_channels=num_filters_fpn,
            head_channels=num_filters,
            norm=norm,
            separable=separable,
            return_all=return_all,
        )

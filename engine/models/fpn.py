"""The DeblurGAN-v2 generator: a feature pyramid decoder shared by every backbone."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import ImageRestorationNet
from engine.models.layers import conv3x3_of_upsampled, conv_kxk, dense_kernel, norm_layer


def _up(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="nearest")


class FPNHead(nn.Sequential):
    """Two 3×3 convolutions (no bias) with ReLU and no norm, applied to one pyramid level."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, separable: bool) -> None:
        super().__init__(
            conv_kxk(in_ch, mid_ch, bias=False, separable=separable),
            nn.ReLU(inplace=True),
            conv_kxk(mid_ch, out_ch, bias=False, separable=separable),
            nn.ReLU(inplace=True),
        )


class ConvNormReLU(nn.Sequential):
    """3×3 convolution (with bias, as upstream) + norm + ReLU."""

    def __init__(self, in_ch: int, out_ch: int, norm: str, separable: bool) -> None:
        super().__init__(
            conv_kxk(in_ch, out_ch, separable=separable),
            norm_layer(norm, out_ch),
            nn.ReLU(inplace=True),
        )


class FPNGenerator(ImageRestorationNet):
    """DeblurGAN-v2 generator on any backbone that returns five taps at 1/2 … 1/32.

    1×1 laterals bring the taps to ``fpn_channels`` (``head_channels`` for the 1/2 tap); a
    top-down pathway adds each level to the upsampled coarser one through a 3×3 conv + norm +
    ReLU; four heads are upsampled to 1/4 resolution and concatenated; two smoothing
    convolutions and two ×2 upsamplings (the 1/2 lateral added in between) return to full
    resolution, and the predicted residual is added to the input:
    ``clamp(tanh(final) + x, -1, 1)``.

    With ``separable=True`` every k×k convolution of this decoder is depthwise-separable
    (MobileNet-DSC). Norms default to BatchNorm, run in eval mode at inference and folded
    into the convolutions at export (upstream runs InstanceNorm in train mode, which breaks
    when exported and makes tiles disagree).

    Args:
        backbone: module whose ``forward(x)`` returns the five taps, finest first.
        tap_channels: channels of the five taps.
        fpn_channels: channels of the pyramid.
        head_channels: channels of each head (and of the 1/2 lateral).
        norm: ``"batch"``, ``"instance"`` (upstream) or ``"none"``.
        separable: depthwise-separable decoder convolutions.
        return_all: kept for the common interface; this network has one output.

    Shape:
        - input: :math:`(N, 3, H, W)` in [-1, 1], any H and W
        - output: :math:`(N, 3, H, W)` in [-1, 1]
    """

    multiple = 32

    def __init__(
        self,
        backbone: nn.Module,
        tap_channels: Sequence[int],
        fpn_channels: int,
        head_channels: int,
        norm: str = "batch",
        separable: bool = False,
        return_all: bool = False,
    ) -> None:
        super().__init__(return_all=return_all)
        nf, nfpn = head_channels, fpn_channels
        self.backbone = backbone
        lateral_out = (nf, nfpn, nfpn, nfpn, nfpn)
        self.laterals = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 1, bias=False)
            for c_in, c_out in zip(tap_channels, lateral_out, strict=True)
        )
        # td[0] merges level 3 (1/16) into the top; td[2] produces level 1 (1/4).
        self.td = nn.ModuleList(ConvNormReLU(nfpn, nfpn, norm, separable) for _ in range(3))
        # heads[0] reads the 1/4 level, heads[3] the 1/32 level.
        self.heads = nn.ModuleList(FPNHead(nfpn, nf, nf, separable) for _ in range(4))
        self.smooth = ConvNormReLU(4 * nf, nf, norm, separable)
        self.smooth2 = ConvNormReLU(nf, nf // 2, norm, separable)
        self.final = conv_kxk(nf // 2, 3, separable=separable)

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the backbone (frozen during the warm-up of training)."""
        return self.backbone.parameters()

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        enc = self.backbone(x)
        lat = [lateral(e) for lateral, e in zip(self.laterals, enc, strict=True)]
        maps = [lat[4]]  # coarsest first
        for td, lateral in zip(self.td, (lat[3], lat[2], lat[1]), strict=True):
            maps.append(td(lateral + _up(maps[-1], 2)))
        map4, map3, map2, map1 = maps
        pyramid = torch.cat(
            [
                _up(self.heads[3](map4), 8),
                _up(self.heads[2](map3), 4),
                _up(self.heads[1](map2), 2),
                self.heads[0](map1),
            ],
            dim=1,
        )
        y = _up(self.smooth(pyramid), 2)
        y = self.smooth2(y + lat[0])
        # final(upsample(y)) without the full-resolution upsampled tensor: same numbers, and
        # the last stage costs far less (see conv3x3_of_upsampled).
        final = conv3x3_of_upsampled(y, *dense_kernel(self.final))
        return torch.clamp(torch.tanh(final) + x, -1.0, 1.0)

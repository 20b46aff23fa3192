"""MIMO-UNet and MIMO-UNet+: one U-Net that takes three input scales and emits three outputs.

Cho et al., "Rethinking Coarse-to-Fine Approach in Single Image Deblurring", ICCV 2021.
The coarse-to-fine cascade of earlier deblurring networks is folded into a single U-Net: the
downscaled images enter the encoder at their own level (SCM + FAM), the encoder levels are
fused across scales before they reach the decoder (AFF), and every decoder level predicts a
residual image at its scale, so the multi-scale loss supervises all three.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import ImageRestorationNet
from engine.models.layers import res_stack


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    relu: bool = True,
    transpose: bool = False,
) -> nn.Module:
    """A biased convolution, optionally followed by ReLU; no normalisation anywhere.

    Transposed convolutions use padding ``k // 2 - 1`` so that a 4×4, stride-2 kernel exactly
    doubles H and W; ordinary ones use "same" padding ``k // 2``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size k.
        stride: stride (2 halves, or for ``transpose`` doubles, the resolution).
        relu: append a ReLU.
        transpose: build a transposed convolution.

    Returns:
        The convolution, or a ``Sequential`` of convolution and ReLU.

    Shape:
        - input: :math:`(N, C_{in}, H, W)`
        - output: :math:`(N, C_{out}, H/s, W/s)`, or :math:`(N, C_{out}, sH, sW)` transposed.
    """
    if transpose:
        layer: nn.Module = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2 - 1
        )
    else:
        layer = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)
    if not relu:
        return layer
    return nn.Sequential(layer, nn.ReLU(inplace=True))


class SCM(nn.Module):
    """Shallow convolutional module: features of a downscaled input image for one encoder level.

    A cheap 4-conv branch (widths c/4, c/2, c/2, c-3) is concatenated with the image itself, so
    the raw pixels reach the level unchanged, then mixed by a 1×1 conv to ``c`` channels.

    Args:
        channels: output channels c (the channels of the encoder level it feeds).

    Shape:
        - input: :math:`(N, 3, H, W)`
        - output: :math:`(N, c, H, W)`
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            conv(3, channels // 4, 3),
            conv(channels // 4, channels // 2, 1),
            conv(channels // 2, channels // 2, 3),
            conv(channels // 2, channels - 3, 1),
        )
        self.fuse = conv(channels, channels, 1, relu=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([image, self.branch(image)], dim=1))


class FAM(nn.Module):
    """Feature attention module: merges SCM features into the encoder stream.

    The element-wise product lets the SCM features act as a spatial gate on the encoder
    features; the residual form keeps the encoder path intact when the gate says nothing.

    Args:
        channels: channels of both inputs.

    Shape:
        - x: :math:`(N, C, H, W)` (encoder features)
        - scm: :math:`(N, C, H, W)` (SCM features of the image at this scale)
        - output: :math:`(N, C, H, W)`
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.merge = conv(channels, channels, 3, relu=False)

    def forward(self, x: torch.Tensor, scm: torch.Tensor) -> torch.Tensor:
        return x + self.merge(x * scm)


class AFF(nn.Module):
    """Asymmetric feature fusion: the three encoder levels, resized to one level, fused.

    Args:
        in_channels: channels of the concatenated encoder outputs (32 + 64 + 128 = 224).
        out_channels: channels of the target level.

    Shape:
        - feats: three tensors :math:`(N, C_k, H, W)`, already resized to the target level
        - output: :math:`(N, C_{out}, H, W)`
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fuse = nn.Sequential(
            conv(in_channels, out_channels, 1, relu=True),
            conv(out_channels, out_channels, 3, relu=False),
        )

    def forward(self, *feats: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat(feats, dim=1))


def _resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    # A scale factor (not a size) keeps the exported ONNX Resize independent of the trace size;
    # nearest matches the paper and is exact for the power-of-two factors used here.
    return F.interpolate(x, scale_factor=scale, mode="nearest")


class MIMOUNet(ImageRestorationNet):
    """MIMO-UNet (``num_res=8``) and MIMO-UNet+ (``num_res=20, dropout=0.1``).

    Three levels of 32, 64 and 128 channels at full, 1/2 and 1/4 resolution. Each output is a
    residual added to the input image at its scale. Inputs and outputs are in [0, 1]; outputs
    are not clamped so the loss sees the raw prediction.

    Args:
        num_res: ResBlocks per encoder and decoder level.
        dropout: Dropout2d probability on the two AFF outputs (training only); 0 disables it.
        return_all: make ``forward`` return all three outputs instead of the full-res one.

    Shape:
        - input: :math:`(N, 3, H, W)`
        - output: :math:`(N, 3, H, W)`; with ``return_all`` the list
          :math:`[(N, 3, \\lceil H/4 \\rceil, \\lceil W/4 \\rceil),
          (N, 3, \\lceil H/2 \\rceil, \\lceil W/2 \\rceil), (N, 3, H, W)]`.
    """

    multiple = 8

    def __init__(self, num_res: int = 8, dropout: float = 0.0, return_all: bool = False) -> None:
        super().__init__(return_all=return_all)
        c1, c2, c3 = 32, 64, 128

        self.head = conv(3, c1, 3)
        self.enc1 = res_stack(c1, num_res)
        self.down2 = conv(c1, c2, 3, stride=2)
        self.scm2 = SCM(c2)
        self.fam2 = FAM(c2)
        self.enc2 = res_stack(c2, num_res)
        self.down3 = conv(c2, c3, 3, stride=2)
        self.scm3 = SCM(c3)
        self.fam3 = FAM(c3)
        self.enc3 = res_stack(c3, num_res)

        self.aff1 = AFF(c1 + c2 + c3, c1)
        self.aff2 = AFF(c1 + c2 + c3, c2)
        # Identity rather than Dropout2d(0) so the plain model does no per-step mask work.
        self.aff_dropout: nn.Module = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()

        self.dec3 = res_stack(c3, num_res)
        self.out3 = conv(c3, 3, 3, relu=False)
        self.up2 = conv(c3, c2, 4, stride=2, transpose=True)
        self.merge2 = conv(2 * c2, c2, 1)
        self.dec2 = res_stack(c2, num_res)
        self.out2 = conv(c2, 3, 3, relu=False)
        self.up1 = conv(c2, c1, 4, stride=2, transpose=True)
        self.merge1 = conv(2 * c1, c1, 1)
        self.dec1 = res_stack(c1, num_res)
        self.out1 = conv(c1, 3, 3, relu=False)

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run the network on an input whose H and W are multiples of 8.

        Args:
            x: blurred images in [0, 1].

        Returns:
            ``[out_1/4, out_1/2, out_full]``, coarsest first.

        Shape:
            - x: :math:`(N, 3, H, W)`
            - output: :math:`[(N, 3, H/4, W/4), (N, 3, H/2, W/2), (N, 3, H, W)]`
        """
        x_2 = _resize(x, 0.5)
        x_4 = _resize(x_2, 0.5)

        e1 = self.enc1(self.head(x))
        e2 = self.enc2(self.fam2(self.down2(e1), self.scm2(x_2)))
        e3 = self.enc3(self.fam3(self.down3(e2), self.scm3(x_4)))

        # Every decoder level sees all encoder levels: finer ones downsampled, coarser upsampled.
        e3_to_2 = _resize(e3, 2.0)
        a1 = self.aff_dropout(self.aff1(e1, _resize(e2, 2.0), _resize(e3_to_2, 2.0)))
        a2 = self.aff_dropout(self.aff2(_resize(e1, 0.5), e2, e3_to_2))

        d3 = self.dec3(e3)
        out_4 = self.out3(d3) + x_4
        d2 = self.dec2(self.merge2(torch.cat([self.up2(d3), a2], dim=1)))
        out_2 = self.out2(d2) + x_2
        d1 = self.dec1(self.merge1(torch.cat([self.up1(d2), a1], dim=1)))
        out_1 = self.out1(d1) + x
        return [out_4, out_2, out_1]

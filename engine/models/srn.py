"""SRN-DeblurNet: a scale-recurrent encoder-decoder with a ConvLSTM bottleneck.

Tao et al., "Scale-recurrent Network for Deep Image Deblurring", CVPR 2018. One
encoder-decoder is applied coarse to fine at 1/4, 1/2 and full resolution with the same
weights; each scale sees the blurred image and the upsampled estimate of the previous scale,
and a ConvLSTM carries a hidden state from scale to scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import ImageRestorationNet
from engine.models.layers import res_stack


def conv5x5(in_channels: int, out_channels: int, stride: int = 1, relu: bool = True) -> nn.Module:
    """A biased 5×5 convolution with "same" padding, optionally followed by ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 1, or 2 to halve H and W.
        relu: append a ReLU.

    Returns:
        The convolution, or a ``Sequential`` of convolution and ReLU.

    Shape:
        - input: :math:`(N, C_{in}, H, W)`
        - output: :math:`(N, C_{out}, H/s, W/s)`
    """
    layer = nn.Conv2d(in_channels, out_channels, 5, stride, padding=2)
    if not relu:
        return layer
    return nn.Sequential(layer, nn.ReLU(inplace=True))


def up4x4(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 4×4 stride-2 transposed convolution (padding 1, so exactly ×2) followed by ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels.

    Returns:
        The upsampling layer.

    Shape:
        - input: :math:`(N, C_{in}, H, W)`
        - output: :math:`(N, C_{out}, 2H, 2W)`
    """
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1),
        nn.ReLU(inplace=True),
    )


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM cell with the gate layout of TensorFlow's ``BasicConvLSTMCell``.

    One conv over ``[input, h]`` produces the gates i, j, f, o. The forget gate gets a fixed
    +1 inside its sigmoid so that, at initialisation, the cell keeps most of its state.

    Args:
        in_channels: channels of the input.
        hidden_channels: channels of h and c.
        kernel_size: gate convolution kernel size.

    Shape:
        - x: :math:`(N, C_{in}, H, W)`
        - h, c: :math:`(N, C_h, H, W)`
        - output: ``(h', c')``, each :math:`(N, C_h, H, W)`
    """

    forget_bias: float = 1.0

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.gates = nn.Conv2d(
            in_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
        )

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        i, j, f, o = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = c * torch.sigmoid(f + self.forget_bias) + torch.sigmoid(i) * torch.tanh(j)
        h = torch.tanh(c) * torch.sigmoid(o)
        return h, c


def _resize_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    # The target size is read from a tensor, so an ONNX trace keeps it dynamic.
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


class SRNDeblurNet(ImageRestorationNet):
    """Scale-recurrent deblurring network with shared weights across scales.

    Encoder 32/64/128 channels (5×5 convs, 3 ResBlocks per level), a 128-channel ConvLSTM at
    1/4 of the scale's resolution, and a decoder that mirrors the encoder with transposed
    convolutions and additive skips. The final conv predicts the sharp image directly (no
    global residual). Inputs and outputs are in [0, 1]; outputs are not clamped.

    Args:
        scales: number of scales, each half the size of the next (3 in the paper).
        return_all: make ``forward`` return every scale's output instead of the full-res one.

    Shape:
        - input: :math:`(N, 3, H, W)`
        - output: :math:`(N, 3, H, W)`; with ``return_all`` the list of ``scales`` outputs,
          the k-th (from 0) of size
          :math:`(N, 3, \\lceil H/2^{S-1-k} \\rceil, \\lceil W/2^{S-1-k} \\rceil)`.
    """

    multiple = 16

    def __init__(self, scales: int = 3, return_all: bool = False) -> None:
        super().__init__(return_all=return_all)
        if scales < 1:
            raise ValueError(f"scales must be >= 1, got {scales}")
        self.scales = scales
        # The coarsest scale must still be divisible by the encoder's total stride of 4.
        self.multiple = 4 * 2 ** (scales - 1)
        c1, c2, c3 = 32, 64, 128

        self.enc1 = nn.Sequential(conv5x5(6, c1), res_stack(c1, 3, 5))
        self.enc2 = nn.Sequential(conv5x5(c1, c2, stride=2), res_stack(c2, 3, 5))
        self.enc3 = nn.Sequential(conv5x5(c2, c3, stride=2), res_stack(c3, 3, 5))
        self.lstm = ConvLSTMCell(c3, c3, kernel_size=3)
        self.dec3 = res_stack(c3, 3, 5)
        self.up2 = up4x4(c3, c2)
        self.dec2 = res_stack(c2, 3, 5)
        self.up1 = up4x4(c2, c1)
        self.dec1 = res_stack(c1, 3, 5)
        self.out = conv5x5(c1, 3, relu=False)

    def forward_padded(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run all scales on an input whose H and W are multiples of ``self.multiple``.

        Args:
            x: blurred images in [0, 1].

        Returns:
            One output per scale, coarsest first, full resolution last.

        Shape:
            - x: :math:`(N, 3, H, W)`
            - output: list of :math:`(N, 3, H/2^{S-1-k}, W/2^{S-1-k})`, k = 0 … S-1
        """
        outputs: list[torch.Tensor] = []
        prev: torch.Tensor | None = None
        h: torch.Tensor | None = None
        c: torch.Tensor | None = None
        for k in range(self.scales):
            factor = 0.5 ** (self.scales - 1 - k)
            blurred = x if factor == 1.0 else self._downscale(x, factor)
            # Detached as in the paper: each scale is supervised by its own loss term only.
            prev = blurred if prev is None else _resize_like(prev, blurred).detach()
            e1 = self.enc1(torch.cat([blurred, prev], dim=1))
            e2 = self.enc2(e1)
            e3 = self.enc3(e2)
            if h is None or c is None:
                h = torch.zeros_like(e3)
                c = torch.zeros_like(e3)
            else:
                h = _resize_like(h, e3)
                c = _resize_like(c, e3)
            h, c = self.lstm(e3, h, c)
            d2 = self.dec2(self.up2(self.dec3(h)) + e2)
            d1 = self.dec1(self.up1(d2) + e1)
            prev = self.out(d1)
            outputs.append(prev)
        return outputs

    @staticmethod
    def _downscale(x: torch.Tensor, factor: float) -> torch.Tensor:
        # A scale factor keeps the ONNX Resize dynamic; the padded size makes it exact.
        return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)

"""NAFNet: a nonlinear-activation-free U-Net for image restoration (Chen et al., ECCV 2022).

The blocks use no ReLU/GELU at all: SimpleGate (the product of two channel halves) supplies
the nonlinearity, and simplified channel attention a global context.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from engine.models.base import ImageRestorationNet


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of every pixel, with a per-channel affine.

    Written with plain tensor ops so the ONNX export is a handful of Reduce / elementwise
    nodes that every runtime supports, at any H and W, and so that it survives an fp16 export
    (NAFNet's layer norms are where fp16 engines are known to produce NaNs):

    * the variance is the mean of squared *centred* values, never ``E[x²] - E[x]²``;
    * even centred values overflow fp16 (max 65504) when squared once ``|x - mean|``
      reaches 256, so they are first divided by their per-pixel maximum magnitude. Layer
      norm is invariant to that scale ``k`` when ``eps`` is scaled with it, so
      ``u / sqrt(mean(u²) + eps / k²)`` with ``u = (x - mean) / k`` equals
      ``(x - mean) / sqrt(var + eps)`` exactly; ``|u| <= 1`` and ``mean(u²) >= 1 / C``,
      so neither overflow nor underflow can reach the variance. ``k`` is clamped below at
      ``sqrt(eps)``, where ``eps`` dominates the variance anyway, to avoid 0 / 0.

    Args:
        channels: number of channels C.
        eps: added to the variance before the square root.

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps
        self.sqrt_eps = eps**0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` over its channels.

        Args:
            x: features.

        Returns:
            The normalised, affinely transformed features.
        """
        centred = x - torch.mean(x, dim=1, keepdim=True)
        # The result does not depend on k, so its gradient through k is zero: detaching it
        # saves the backward pass through the max without changing any gradient.
        peak = torch.amax(torch.abs(centred), dim=1, keepdim=True).detach()
        scale = torch.clamp(peak, min=self.sqrt_eps)
        unit = centred / scale
        var = torch.mean(unit * unit, dim=1, keepdim=True)
        # (sqrt(eps) / k)² rather than eps / k²: k² alone would overflow fp16 for k > 256.
        ratio = self.sqrt_eps / scale
        return self.weight * (unit / torch.sqrt(var + ratio * ratio)) + self.bias


class SimpleGate(nn.Module):
    """Split the channels into two halves and multiply them: the block's only nonlinearity.

    Shape:
        - x: :math:`(N, 2C, H, W)`
        - output: :math:`(N, C, H, W)`
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate one half of the channels with the other.

        Args:
            x: features with an even number of channels.

        Returns:
            The product of the two halves.
        """
        a, b = x.chunk(2, dim=1)
        return a * b


class SimplifiedChannelAttention(nn.Module):
    """Scale every channel by a linear function of the channel means (no MLP, no sigmoid).

    Args:
        channels: number of channels C.

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Re-weight the channels of ``x``.

        Args:
            x: features.

        Returns:
            The re-weighted features.
        """
        # A reduction rather than AdaptiveAvgPool2d: it exports as one ReduceMean whose
        # extent follows the input, so the graph keeps H and W dynamic.
        return x * self.proj(torch.mean(x, dim=(2, 3), keepdim=True))


class NAFBlock(nn.Module):
    """NAFNet's block: a gated depthwise-conv mixer, then a gated feed-forward, each residual.

    Both residual branches are scaled by a learnable per-channel factor initialised to 0
    (``beta`` and ``gamma``), so a freshly built block is the identity: a deep stack starts
    as a well-conditioned shallow network and each block opens up as it learns.

    Args:
        channels: number of channels C.

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = 2 * channels
        self.norm1 = LayerNorm2d(channels)
        self.expand = nn.Conv2d(channels, hidden, kernel_size=1)
        self.depthwise = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.gate = SimpleGate()
        self.attention = SimplifiedChannelAttention(channels)
        self.project = nn.Conv2d(channels, channels, kernel_size=1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))

        self.norm2 = LayerNorm2d(channels)
        self.ffn_expand = nn.Conv2d(channels, hidden, kernel_size=1)
        self.ffn_project = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x: features.

        Returns:
            Features of the same shape.
        """
        y = self.gate(self.depthwise(self.expand(self.norm1(x))))
        x = x + self.beta * self.project(self.attention(y))
        y = self.gate(self.ffn_expand(self.norm2(x)))
        return x + self.gamma * self.ffn_project(y)


class NAFNet(ImageRestorationNet):
    """NAFNet U-Net: NAFBlocks at every level, strided-conv down, pixel-shuffle up.

    ``intro`` (3x3, 3 -> width) feeds ``len(enc_blocks)`` encoder levels; after each level a
    2x2 stride-2 conv halves the resolution and doubles the channels. ``middle_blocks`` run at
    the bottom. Each decoder level is preceded by a 1x1 conv (no bias) to twice the channels
    and PixelShuffle(2), which doubles the resolution and leaves half the channels; the
    encoder output of that level is added (not concatenated). ``ending`` (3x3, width -> 3)
    predicts a residual that is added to the input.

    With the defaults (width 32, enc (1, 1, 1, 28), middle 1, dec (1, 1, 1, 1)) this is the
    published NAFNet-width32 GoPro model: 17.1 M parameters.

    Args:
        width: channels of the first level; level ``i`` has ``width * 2**i``.
        enc_blocks: NAFBlocks per encoder level, top level first.
        middle_blocks: NAFBlocks at the bottom level.
        dec_blocks: NAFBlocks per decoder level, bottom level first; as many as ``enc_blocks``.
        return_all: kept for the common interface; NAFNet has a single output.

    Raises:
        ValueError: ``enc_blocks`` and ``dec_blocks`` differ in length.

    Shape:
        - x: :math:`(N, 3, H, W)`, range [0, 1]; padded internally to a multiple of
          ``2 ** len(enc_blocks)`` (16 by default).
        - output: :math:`(N, 3, H, W)`
    """

    multiple = 16

    def __init__(
        self,
        width: int = 32,
        enc_blocks: Sequence[int] = (1, 1, 1, 28),
        middle_blocks: int = 1,
        dec_blocks: Sequence[int] = (1, 1, 1, 1),
        return_all: bool = False,
    ) -> None:
        super().__init__(return_all=return_all)
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(
                f"enc_blocks and dec_blocks need one entry per level: "
                f"{len(enc_blocks)} != {len(dec_blocks)}"
            )
        # Every level halves H and W, so the padding must follow the depth.
        self.multiple = 2 ** len(enc_blocks)
        self.intro = nn.Conv2d(3, width, kernel_size=3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for count in enc_blocks:
            self.encoders.append(nn.Sequential(*(NAFBlock(channels) for _ in range(count))))
            self.downs.append(nn.Conv2d(channels, 2 * channels, kernel_size=2, stride=2))
            channels *= 2
        self.middle = nn.Sequential(*(NAFBlock(channels) for _ in range(middle_blocks)))
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for count in dec_blocks:
            self.ups.append(
                nn.Sequential(
                    nn.Conv2d(channels, 2 * channels, kernel_size=1, bias=False),
                    nn.PixelShuffle(2),
                )
            )
            channels //= 2
            self.decoders.append(nn.Sequential(*(NAFBlock(channels) for _ in range(count))))
        self.ending = nn.Conv2d(width, 3, kernel_size=3, padding=1)

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Restore images whose H and W are multiples of :attr:`multiple`.

        Args:
            x: blurred images.

        Returns:
            The restored images.

        Shape:
            - x: :math:`(N, 3, H, W)`, H and W multiples of :attr:`multiple`
            - output: :math:`(N, 3, H, W)`
        """
        features = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            features = encoder(features)
            skips.append(features)
            features = down(features)
        features = self.middle(features)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            features = decoder(up(features) + skip)
        return x + self.ending(features)

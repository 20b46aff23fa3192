"""DeblurGAN-v2 generator: a feature pyramid network on an Inception-ResNet-v2 backbone.

The backbone follows Szegedy et al., "Inception-v4, Inception-ResNet and the Impact of Residual
Connections on Learning" (2016), with the module names of the widely used Cadene
``pretrainedmodels`` port, so a converted ImageNet checkpoint loads by name. Only the layers the
FPN taps are built (up to ``mixed_7a``); the classifier tail is never run, so building it would
only waste memory and confuse the parameter count.

Every stride-2 convolution and pooling is padded ("same" style), unlike the original valid
padding, so each stride halves an even size exactly and the five taps of an input whose sides
are multiples of 32 line up at 1/2, 1/4, 1/8, 1/16 and 1/32 without the cropping or extra
padding the upstream code needs.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from engine.models.fpn import FPNGenerator
from engine.models.layers import load_built_layers, read_state_dict

__all__ = ["FPNInceptionResNetV2", "InceptionResNetV2Backbone"]

# Keys of a checkpoint that belong to layers we deliberately do not build; they are skipped
# silently instead of being reported as unexpected.
_UNBUILT_PREFIXES = ("repeat_2.", "block8.", "conv2d_7b.", "avgpool_1a.", "last_linear.")


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm and ReLU: the unit of the Inception backbone.

    The bias is omitted because the following batch norm has its own shift; ``eps=0.001``
    matches the statistics the ImageNet weights were trained with.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        kernel_size: convolution kernel size.
        stride: convolution stride.
        padding: zero padding on each side.

    Shape:
        - input: :math:`(N, C_{in}, H, W)`
        - output: :math:`(N, C_{out}, H', W')`
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, norm and ReLU.

        Args:
            x: feature map.

        Returns:
            The activated feature map.
        """
        return self.relu(self.bn(self.conv(x)))


class Mixed5b(nn.Module):
    """Stem output block (35×35 grid in the paper): four parallel branches, 192 → 320 channels.

    Shape:
        - input: :math:`(N, 192, H, W)`
        - output: :math:`(N, 320, H, W)`
    """

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(192, 96, 1)
        self.branch1 = nn.Sequential(BasicConv2d(192, 48, 1), BasicConv2d(48, 64, 5, padding=2))
        self.branch2 = nn.Sequential(
            BasicConv2d(192, 64, 1),
            BasicConv2d(64, 96, 3, padding=1),
            BasicConv2d(96, 96, 3, padding=1),
        )
        # count_include_pad=False keeps border averages unbiased, as in the reference weights.
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(192, 64, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the branches and concatenate them.

        Args:
            x: stem features.

        Returns:
            The concatenated branch outputs.
        """
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class Block35(nn.Module):
    """Inception-ResNet-A block: scaled residual over three branches, 320 channels.

    Args:
        scale: residual scaling; small values keep the very deep stack stable to train.

    Shape:
        - input: :math:`(N, 320, H, W)`
        - output: :math:`(N, 320, H, W)`
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(320, 32, 1)
        self.branch1 = nn.Sequential(BasicConv2d(320, 32, 1), BasicConv2d(32, 32, 3, padding=1))
        self.branch2 = nn.Sequential(
            BasicConv2d(320, 32, 1),
            BasicConv2d(32, 48, 3, padding=1),
            BasicConv2d(48, 64, 3, padding=1),
        )
        self.conv2d = nn.Conv2d(128, 320, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the scaled branch mixture to the input.

        Args:
            x: features.

        Returns:
            The updated features.
        """
        out = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Mixed6a(nn.Module):
    """Reduction-A: halves the grid, 320 → 1088 channels.

    Shape:
        - input: :math:`(N, 320, H, W)`
        - output: :math:`(N, 1088, H/2, W/2)`
    """

    def __init__(self) -> None:
        super().__init__()
        # padding=1 on the stride-2 layers: see the module docstring.
        self.branch0 = BasicConv2d(320, 384, 3, stride=2, padding=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(320, 256, 1),
            BasicConv2d(256, 256, 3, padding=1),
            BasicConv2d(256, 384, 3, stride=2, padding=1),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the branches and concatenate them.

        Args:
            x: features.

        Returns:
            The reduced features.
        """
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class Block17(nn.Module):
    """Inception-ResNet-B block: scaled residual over a factorised 7×7 branch, 1088 channels.

    Args:
        scale: residual scaling.

    Shape:
        - input: :math:`(N, 1088, H, W)`
        - output: :math:`(N, 1088, H, W)`
    """

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1088, 192, 1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1088, 128, 1),
            BasicConv2d(128, 160, (1, 7), padding=(0, 3)),
            BasicConv2d(160, 192, (7, 1), padding=(3, 0)),
        )
        self.conv2d = nn.Conv2d(384, 1088, 1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the scaled branch mixture to the input.

        Args:
            x: features.

        Returns:
            The updated features.
        """
        out = torch.cat([self.branch0(x), self.branch1(x)], 1)
        return self.relu(self.conv2d(out) * self.scale + x)


class Mixed7a(nn.Module):
    """Reduction-B: halves the grid, 1088 → 2080 channels.

    Shape:
        - input: :math:`(N, 1088, H, W)`
        - output: :math:`(N, 2080, H/2, W/2)`
    """

    def __init__(self) -> None:
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(1088, 256, 1), BasicConv2d(256, 384, 3, stride=2, padding=1)
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(1088, 256, 1), BasicConv2d(256, 288, 3, stride=2, padding=1)
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(1088, 256, 1),
            BasicConv2d(256, 288, 3, padding=1),
            BasicConv2d(288, 320, 3, stride=2, padding=1),
        )
        self.branch3 = nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the branches and concatenate them.

        Args:
            x: features.

        Returns:
            The reduced features.
        """
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class InceptionResNetV2Backbone(nn.Module):
    """Inception-ResNet-v2 up to ``mixed_7a``, returning the five FPN taps.

    Module names follow the Cadene ``pretrainedmodels`` layout, so its ImageNet checkpoint loads
    with :meth:`load_cadene_state_dict`. All stride-2 layers are padded so each halves the size.

    Shape:
        - input: :math:`(N, 3, H, W)` with H, W multiples of 32
        - output: five maps of 32, 64, 192, 1088 and 2080 channels at H/2, H/4, H/8, H/16, H/32
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, stride=2, padding=1)
        self.conv2d_2a = BasicConv2d(32, 32, 3, padding=1)
        self.conv2d_2b = BasicConv2d(32, 64, 3, padding=1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3, padding=1)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2, padding=1)
        self.mixed_5b = Mixed5b()
        self.repeat = nn.Sequential(*[Block35(scale=0.17) for _ in range(10)])
        self.mixed_6a = Mixed6a()
        self.repeat_1 = nn.Sequential(*[Block17(scale=0.10) for _ in range(20)])
        self.mixed_7a = Mixed7a()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Compute the five pyramid taps, finest first.

        Args:
            x: images.

        Returns:
            ``[enc0, enc1, enc2, enc3, enc4]``.
        """
        enc0 = self.conv2d_1a(x)
        enc1 = self.maxpool_3a(self.conv2d_2b(self.conv2d_2a(enc0)))
        enc2 = self.maxpool_5a(self.conv2d_4a(self.conv2d_3b(enc1)))
        enc3 = self.mixed_6a(self.repeat(self.mixed_5b(enc2)))
        enc4 = self.mixed_7a(self.repeat_1(enc3))
        return [enc0, enc1, enc2, enc3, enc4]

    def load_cadene_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load ImageNet weights in the Cadene key layout, strictly for the layers built here.

        Keys of the unbuilt tail (``repeat_2``, ``block8``, ``conv2d_7b``, ``last_linear``)
        are ignored. ``num_batches_tracked`` buffers may be absent: old checkpoints predate them.

        Args:
            state_dict: the checkpoint's tensors by name.

        Raises:
            ValueError: keys of built layers are missing, shapes differ, or keys are unknown.
        """
        load_built_layers(
            self,
            state_dict,
            "an Inception-ResNet-v2 checkpoint in the Cadene layout",
            lambda key: key.startswith(_UNBUILT_PREFIXES),
        )


class FPNInceptionResNetV2(FPNGenerator):
    """DeblurGAN-v2 generator (Kupyn et al., ICCV 2019): FPN on Inception-ResNet-v2.

    The shared decoder of :class:`~engine.models.fpn.FPNGenerator` with 256-channel laterals
    and 128-channel heads (the upstream widths), on the five taps of
    :class:`InceptionResNetV2Backbone`.

    Args:
        norm: decoder norm, ``"batch"`` (default), ``"instance"`` (upstream) or ``"none"``;
            the backbone always uses the batch norm its ImageNet weights expect.
        backbone_weights: optional path to an Inception-ResNet-v2 ImageNet state dict in the
            Cadene key layout; keys of layers not built here are ignored.
        return_all: kept for the common interface; this network has a single output.

    Raises:
        ValueError: unknown ``norm``, or ``backbone_weights`` does not fit the backbone.
        FileNotFoundError: ``backbone_weights`` does not exist.

    Shape:
        - input: :math:`(N, 3, H, W)` in :math:`[-1, 1]`, any H, W (padded to multiples of 32)
        - output: :math:`(N, 3, H, W)` in :math:`[-1, 1]`
    """

    def __init__(
        self,
        norm: str = "batch",
        backbone_weights: str | os.PathLike | None = None,
        return_all: bool = False,
    ) -> None:
        backbone = InceptionResNetV2Backbone()
        if backbone_weights is not None:
            state = read_state_dict(backbone_weights, "Inception-ResNet-v2 weights")
            backbone.load_cadene_state_dict(state)
        super().__init__(
            backbone,
            (32, 64, 192, 1088, 2080),
            fpn_channels=256,
            head_channels=128,
            norm=norm,
            return_all=return_all,
        )

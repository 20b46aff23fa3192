"""PatchGAN discriminators of DeblurGAN-v2: a 70×70 PatchGAN, a "full" one and both together.

``NLayerDiscriminator`` is the pix2pix design DeblurGAN-v2 uses: 4×4 convs, ``n_layers``
stride-2 convs, then two stride-1 convs (the last one giving a 1-channel score map),
LeakyReLU 0.2 after every conv but the last, InstanceNorm after every conv but the first and the
last. Channels 64, 128, 256, 512, capped at 512. With ``n_layers=3`` each score sees a 70×70
patch; with ``n_layers=5`` it sees 286×286, i.e. all of a 256 crop. The double-scale
discriminator returns both score maps; the adversarial losses average over them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator with ``n_layers`` stride-2 4×4 convs.

    Args:
        in_channels: image channels.
        ndf: channels of the first conv; doubled per layer, capped at ``8 * ndf``.
        n_layers: stride-2 convs (3: PatchGAN, 70×70 receptive field; 5: "full", 286×286).
        norm: ``"instance"`` (DeblurGAN-v2) or ``"none"``.
        padding: conv padding; 2 as in DeblurGAN-v2 (``ceil((4 - 1) / 2)``), 1 as in pix2pix.

    Shape:
        - input: :math:`(N, C, H, W)`
        - output: :math:`(N, 1, H_o, W_o)` raw scores (no sigmoid); for ``H = 256`` and
          ``padding=2``: 35 (``n_layers=3``) and 11 (``n_layers=5``)
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        padding: int = 2,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be at least 1, got {n_layers}")
        if norm not in ("instance", "none"):
            raise ValueError(f"unknown norm {norm!r}; choose 'instance' or 'none'")
        self.n_layers = n_layers

        def block(in_ch: int, out_ch: int, stride: int) -> list[nn.Module]:
            if norm == "none":
                return [nn.Conv2d(in_ch, out_ch, 4, stride, padding), nn.LeakyReLU(0.2)]
            # A bias before InstanceNorm is removed by its mean subtraction: leave it out.
            return [
                nn.Conv2d(in_ch, out_ch, 4, stride, padding, bias=False),
                nn.InstanceNorm2d(out_ch, affine=False, track_running_stats=False),
                nn.LeakyReLU(0.2),
            ]

        # No norm on the first layer: normalising raw image statistics away would hide colour
        # and contrast errors from the discriminator.
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, padding), nn.LeakyReLU(0.2)]
        channels = ndf
        for n in range(1, n_layers):
            out = ndf * min(2**n, 8)
            layers += block(channels, out, stride=2)
            channels = out
        out = ndf * min(2**n_layers, 8)
        layers += block(channels, out, stride=1)
        layers.append(nn.Conv2d(out, 1, 4, 1, padding))
        self.model = nn.Sequential(*layers)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window that one output score depends on (norm aside)."""
        rf, jump = 1, 1
        for m in self.model:
            if isinstance(m, nn.Conv2d):
                rf += (m.kernel_size[0] - 1) * jump
                jump *= m.stride[0]
        return rf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Score every patch.

        Args:
            x: images.

        Returns:
            The score map.

        Shape:
            - x: :math:`(N, C, H, W)`
            - output: :math:`(N, 1, H_o, W_o)`
        """
        return self.model(x)


class DoubleScaleDiscriminator(nn.Module):
    """DeblurGAN-v2's double-scale discriminator: a PatchGAN and a "full" one side by side.

    Args:
        in_channels: image channels.
        ndf: first-layer channels of both.
        patch_layers: stride-2 layers of the local discriminator (3 → 70×70).
        full_layers: stride-2 layers of the global one (5 → 286×286).
        norm: ``"instance"`` or ``"none"``.
        padding: conv padding of both.

    Shape:
        - input: :math:`(N, C, H, W)`
        - output: a list ``[patch_scores, full_scores]`` of :math:`(N, 1, H_k, W_k)`; the
          adversarial losses treat each with its own history and average them
    """

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        patch_layers: int = 3,
        full_layers: int = 5,
        norm: str = "instance",
        padding: int = 2,
    ) -> None:
        super().__init__()
        self.patch = NLayerDiscriminator(in_channels, ndf, patch_layers, norm, padding)
        self.full = NLayerDiscriminator(in_channels, ndf, full_layers, norm, padding)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Score the images with both discriminators.

        Args:
            x: images.

        Returns:
            ``[patch_scores, full_scores]``.

        Shape:
            - x: :math:`(N, C, H, W)`
            - output: two maps :math:`(N, 1, H_k, W_k)`
        """
        return [self.patch(x), self.full(x)]


def build_discriminator(config: Mapping[str, Any] | None = None) -> nn.Module:
    """Build a discriminator from a recipe's ``discriminator`` section.

    Args:
        config: ``{"type": "double" | "patch" | "full", ...}`` plus the constructor options
            (``ndf``, ``norm``, ``padding``, ``in_channels``; ``n_layers`` for patch/full);
            ``None`` gives DeblurGAN-v2's double-scale discriminator.

    Returns:
        The discriminator.

    Raises:
        ValueError: unknown type or option.
    """
    options = dict(config or {})
    kind = options.pop("type", "double")
    try:
        if kind == "double":
            return DoubleScaleDiscriminator(**options)
        if kind == "patch":
            return NLayerDiscriminator(**{"n_layers": 3, **options})
        if kind == "full":
            return NLayerDiscriminator(**{"n_layers": 5, **options})
    except TypeError as exc:
        raise ValueError(f"bad discriminator option: {exc}") from None
    raise ValueError(f"unknown discriminator type {kind!r}; choose 'double', 'patch' or 'full'")

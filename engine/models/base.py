"""Common behaviour of every network in the zoo: any input size in, same size out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad the bottom and right edges of ``x`` up to a multiple of ``multiple``.

    The pad amounts are computed from the tensor's shape, so a traced ONNX graph keeps
    them dynamic: one exported file serves every frame size. A zero pad is a no-op.

    Args:
        x: image batch.
        multiple: the value H and W must be divisible by.

    Returns:
        The padded batch.

    Shape:
        - x: :math:`(N, C, H, W)`
        - output: :math:`(N, C, \\lceil H/m \\rceil m, \\lceil W/m \\rceil m)`
    """
    h, w = x.shape[-2:]
    pad_h = (multiple - h % multiple) % multiple
    pad_w = (multiple - w % multiple) % multiple
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")


class ImageRestorationNet(nn.Module):
    """Base class: pads the input to the network's multiple and crops every output back.

    Subclasses set ``multiple`` and implement :meth:`forward_padded`, which sees inputs whose
    H and W are multiples of ``multiple`` and returns either one image or a list of images,
    coarsest first and the full-resolution result last.

    ``forward`` returns the final, full-resolution image by default. With
    ``return_all=True`` (set at construction or changed later) it returns every output,
    each cropped to its own scale, for multi-scale losses and deep supervision.
    """

    multiple: int = 1

    def __init__(self, return_all: bool = False) -> None:
        super().__init__()
        self.return_all = return_all

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Restore a batch of images of any size.

        Args:
            x: blurred images in the model's input range.

        Returns:
            The restored images (``return_all=False``) or all outputs (``return_all=True``).

        Shape:
            - x: :math:`(N, 3, H, W)`
            - output: :math:`(N, 3, H, W)`; with ``return_all`` a list whose k-th entry of
              scale s is :math:`(N, 3, \\lceil H/s \\rceil, \\lceil W/s \\rceil)`.
        """
        h, w = x.shape[-2:]
        out = self.forward_padded(pad_to_multiple(x, self.multiple))
        if not isinstance(out, (list, tuple)):
            return out[..., :h, :w]
        padded_h = out[-1].shape[-2]
        if not self.return_all:
            return out[-1][..., :h, :w]
        cropped = []
        for y in out:
            scale = padded_h // y.shape[-2]
            cropped.append(y[..., : -(-h // scale), : -(-w // scale)])
        return cropped

"""Content losses of the deblurring recipes and a config-driven weighted sum of them.

* pixel losses: L1, MSE, Charbonnier, PSNR loss (NAFNet), MSFR / FFT loss (MIMO-UNet);
* :class:`MultiScaleLoss`: a pixel loss summed over the coarse-to-fine outputs that MIMO-UNet
  (L1, FFT) and SRN (MSE) train with, against the target resized to each output;
* :class:`PerceptualLoss`: MSE between VGG features (DeblurGAN-v2: VGG19 conv3_3 before ReLU);
* :func:`build_loss`: ``{"mse": 0.5, "perceptual": 0.006}`` → one module returning the total
  and its parts.

The adversarial term needs the discriminator and lives in :mod:`training.adversarial`.

Every pixel loss takes ``reduction="mean"`` (one scalar, the mean over the batch of the
per-image values; for L1/MSE/Charbonnier that is the plain element mean) or ``"none"`` (one
value per image, shape (N,)).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.vgg import build_vgg, imagenet_normalize

Outputs = torch.Tensor | Sequence[torch.Tensor]
PixelLoss = Callable[..., torch.Tensor]


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "none":
        return per_image
    raise ValueError(f"unknown reduction {reduction!r}; choose 'mean' or 'none'")


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")


def _per_image_mean(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(dim=1)


def l1_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error.

    Args:
        pred: prediction.
        target: ground truth, same shape.
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        A scalar, or one value per image.

    Shape:
        - pred, target: :math:`(N, *)`
        - output: scalar or :math:`(N,)`
    """
    _check_pair(pred, target)
    return _reduce(_per_image_mean((pred - target).abs()), reduction)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error.

    Args:
        pred: prediction.
        target: ground truth, same shape.
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        A scalar, or one value per image.

    Shape:
        - pred, target: :math:`(N, *)`
        - output: scalar or :math:`(N,)`
    """
    _check_pair(pred, target)
    return _reduce(_per_image_mean((pred - target).pow(2)), reduction)


def charbonnier_loss(
    pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3, reduction: str = "mean"
) -> torch.Tensor:
    """Charbonnier (smooth L1) loss ``mean(sqrt((pred - target)² + eps²))``.

    Squaring ``eps`` makes it a length in the image's units: the loss of a perfect prediction
    is exactly ``eps``, and differences much larger than ``eps`` cost about ``|d|``.

    Args:
        pred: prediction.
        target: ground truth, same shape.
        eps: smoothing length (1e-3 as in MPRNet / DeblurGAN-style recipes for [0, 1] data).
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        A scalar, or one value per image.

    Shape:
        - pred, target: :math:`(N, *)`
        - output: scalar or :math:`(N,)`
    """
    _check_pair(pred, target)
    value = ((pred - target).pow(2) + eps * eps).sqrt()
    return _reduce(_per_image_mean(value), reduction)


def psnr_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative PSNR per image, as NAFNet trains: ``10·log10(mse / range² + eps)``.

    Minimising it maximises the mean per-image PSNR, which weights well-restored (low-error)
    images more than MSE does.

    Args:
        pred: prediction.
        target: ground truth, same shape.
        data_range: the span of valid values (1 for [0, 1] data, 2 for [-1, 1]); the MSE is
            divided by its square, so the value is −PSNR in dB for any range.
        eps: keeps the log finite for a perfect prediction (NAFNet's 1e-8).
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        A scalar, or one value per image (−PSNR in dB).

    Shape:
        - pred, target: :math:`(N, *)`
        - output: scalar or :math:`(N,)`
    """
    _check_pair(pred, target)
    mse = _per_image_mean((pred - target).pow(2)) / (data_range * data_range)
    return _reduce(10.0 / math.log(10.0) * torch.log(mse + eps), reduction)


def fft_loss(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """MSFR frequency loss of MIMO-UNet: L1 between the 2-D FFTs' real and imaginary parts.

    Args:
        pred: prediction.
        target: ground truth, same shape.
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        The mean absolute difference over both parts of every frequency (unnormalised FFT,
        as upstream), a scalar or one value per image.

    Shape:
        - pred, target: :math:`(N, C, H, W)`
        - output: scalar or :math:`(N,)`
    """
    _check_pair(pred, target)
    # cuFFT has no half-precision path for arbitrary sizes; AMP would otherwise fail here.
    diff = torch.fft.fft2(pred.float(), dim=(-2, -1)) - torch.fft.fft2(target.float(), dim=(-2, -1))
    value = torch.stack((diff.real.abs(), diff.imag.abs()), dim=-1)
    return _reduce(_per_image_mean(value), reduction)


PIXEL_LOSSES: dict[str, PixelLoss] = {
    "l1": l1_loss,
    "mse": mse_loss,
    "charbonnier": charbonnier_loss,
    "psnr": psnr_loss,
    "fft": fft_loss,
}


class PixelLossModule(nn.Module):
    """A pixel loss function with fixed keyword options, as a module.

    Args:
        fn: one of :data:`PIXEL_LOSSES`.
        **options: keyword arguments of ``fn`` (``eps``, ``data_range``, …).

    Shape:
        - pred, target: :math:`(N, C, H, W)`
        - output: scalar (or :math:`(N,)` with ``reduction="none"``)
    """

    def __init__(self, fn: PixelLoss, **options: Any) -> None:
        super().__init__()
        self.fn = fn
        self.options = options

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """Apply the loss; see the wrapped function."""
        return self.fn(pred, target, reduction=reduction, **self.options)


def resize_target(
    target: torch.Tensor, size: Sequence[int], mode: str = "bilinear"
) -> torch.Tensor:
    """Resize the ground truth to an output's size.

    Args:
        target: ground truth.
        size: ``(H, W)`` of the output.
        mode: ``"bilinear"`` (MIMO-UNet, SRN; ``align_corners=False``) or ``"area"``.

    Returns:
        ``target`` itself when the size already matches, else the resized copy.

    Shape:
        - target: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H_o, W_o)`
    """
    size = (int(size[0]), int(size[1]))
    if tuple(target.shape[-2:]) == size:
        return target
    if mode == "bilinear":
        return F.interpolate(target, size=size, mode="bilinear", align_corners=False)
    if mode == "area":
        return F.interpolate(target, size=size, mode="area")
    raise ValueError(f"unknown resize mode {mode!r}; choose 'bilinear' or 'area'")


def _as_list(outputs: Outputs) -> list[torch.Tensor]:
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    outputs = list(outputs)
    if not outputs:
        raise ValueError("no model outputs to compute a loss on")
    return outputs


def final_output(outputs: Outputs) -> torch.Tensor:
    """The full-resolution prediction: the tensor itself, or the last of a coarsest-first list."""
    return _as_list(outputs)[-1]


class MultiScaleLoss(nn.Module):
    """Sum over the model's outputs of a base loss against the target resized to each output.

    MIMO-UNet: L1 (and the FFT loss) over ¼, ½ and full resolution; SRN: MSE over its three
    scales. Upstream sums, it does not average, so a 3-scale loss is about 3× a single one.

    Args:
        base: a loss ``(pred, target, reduction=…) -> Tensor``, e.g. :func:`l1_loss`.
        resize: ``"bilinear"`` or ``"area"`` for resizing the target.

    Shape:
        - outputs: a list of :math:`(N, C, H_k, W_k)`, coarsest first (what the models return
          with ``return_all=True``), or one tensor
        - target: :math:`(N, C, H, W)`
        - output: scalar (or :math:`(N,)` with ``reduction="none"``)
    """

    def __init__(self, base: PixelLoss | nn.Module, resize: str = "bilinear") -> None:
        super().__init__()
        if resize not in ("bilinear", "area"):
            raise ValueError(f"unknown resize mode {resize!r}; choose 'bilinear' or 'area'")
        self.base = base
        self.resize = resize

    def forward(
        self, outputs: Outputs, target: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """Sum the base loss over all outputs.

        Args:
            outputs: predictions, coarsest first, or one tensor.
            target: full-resolution ground truth.
            reduction: passed to the base loss.

        Returns:
            The sum over scales.
        """
        total = None
        for out in _as_list(outputs):
            term = self.base(
                out, resize_target(target, out.shape[-2:], self.resize), reduction=reduction
            )
            total = term if total is None else total + term
        assert total is not None
        return total


class PerceptualLoss(nn.Module):
    """MSE between VGG features of the prediction and of the target.

    Both images are mapped from ``value_range`` to [0, 1] and ImageNet-normalised — every image
    of the batch (upstream DeblurGAN-v2 normalised only the first sample, so the rest of the
    batch saw unnormalised inputs). The target's features carry no gradient.

    Args:
        arch: ``"vgg19"`` (the paper) or ``"vgg16"`` (weights found offline, see
            :mod:`engine.assets`).
        layer: a VGG layer name; the paper's is ``"conv3_3"``, before the ReLU.
        weights: the VGG weights file; ``None`` looks it up
            (see :func:`engine.models.vgg.build_vgg`).
        value_range: ``(low, high)`` of the images given to the loss, e.g. ``(-1, 1)`` for
            the DeblurGAN-v2 generators.
        pretrained: ``False`` keeps random VGG weights (tests only).

    Shape:
        - pred, target: :math:`(N, 3, H, W)`
        - output: scalar (or :math:`(N,)` with ``reduction="none"``)
    """

    def __init__(
        self,
        arch: str = "vgg19",
        layer: str = "conv3_3",
        weights: str | os.PathLike | None = None,
        value_range: Sequence[float] = (0.0, 1.0),
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        low, high = (float(v) for v in value_range)
        if not high > low:
            raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
        self.low, self.high = low, high
        self.layer = layer
        self.vgg = build_vgg(arch, [layer], weights=weights, pretrained=pretrained)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The chosen layer's features of images in ``value_range``.

        Args:
            x: RGB images.

        Returns:
            VGG features.

        Shape:
            - x: :math:`(N, 3, H, W)`
            - output: :math:`(N, C, H_l, W_l)`
        """
        unit = (x - self.low) / (self.high - self.low)
        return self.vgg(imagenet_normalize(unit))[self.layer]

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """Feature MSE.

        Args:
            pred: predictions in ``value_range``.
            target: ground truth in ``value_range``.
            reduction: ``"mean"`` or ``"none"`` (per image).

        Returns:
            A scalar, or one value per image.
        """
        _check_pair(pred, target)
        with torch.no_grad():
            target_features = self.features(target)
        return mse_loss(self.features(pred), target_features, reduction=reduction)


LOSS_NAMES = (*PIXEL_LOSSES, "perceptual")


class CombinedLoss(nn.Module):
    """A weighted sum of named losses; see :func:`build_loss`.

    Shape:
        - outputs: :math:`(N, C, H, W)` or a coarsest-first list of them
        - target: :math:`(N, C, H, W)`
        - output: ``(total, parts)``: the scalar total and each term's *weighted* value,
          detached, by name
    """

    def __init__(self, terms: Mapping[str, tuple[float, nn.Module, bool]]) -> None:
        super().__init__()
        if not terms:
            raise ValueError("the loss has no term with a non-zero weight")
        self.weights = {name: weight for name, (weight, _, _) in terms.items()}
        self.multiscale = {name: multi for name, (_, _, multi) in terms.items()}
        self.terms = nn.ModuleDict({name: module for name, (_, module, _) in terms.items()})

    def forward(
        self, outputs: Outputs, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Compute every term and their weighted sum.

        Multi-scale terms get all outputs; the others the full-resolution one only.

        Args:
            outputs: the model's prediction(s).
            target: full-resolution ground truth.

        Returns:
            ``(total, parts)``; ``parts`` holds detached weighted terms for logging (tensors, so
            logging does not force a device sync every step).
        """
        total = None
        parts: dict[str, torch.Tensor] = {}
        for name, module in self.terms.items():
            pred = outputs if self.multiscale[name] else final_output(outputs)
            value = self.weights[name] * module(pred, target)
            parts[name] = value.detach()
            total = value if total is None else total + value
        assert total is not None
        return total, parts


def build_loss(config: Mapping[str, Any]) -> CombinedLoss:
    """Build a weighted sum of losses from a config mapping names to weights or options.

    Names: ``l1``, ``mse``, ``charbonnier``, ``psnr``, ``fft``, ``perceptual``. A value is
    either the weight or a mapping with ``weight`` plus options:

    * ``multiscale: true`` (pixel losses): sum over all outputs, see :class:`MultiScaleLoss`;
      ``resize: bilinear|area``;
    * the pixel loss's own keywords (``eps`` for charbonnier, ``data_range``/``eps`` for psnr);
    * for ``perceptual``: ``arch``, ``layer``, ``weights``, ``value_range``.

    Terms with weight 0 are not built (so a zero perceptual weight loads no VGG).

    Examples:
        DeblurGAN-v2 content loss, generator in [-1, 1] (adversarial term separate)::

            build_loss({"mse": 0.5,
                        "perceptual": {"weight": 0.006, "value_range": [-1, 1]}})

        MIMO-UNet::

            build_loss({"l1": {"weight": 1, "multiscale": True},
                        "fft": {"weight": 0.1, "multiscale": True}})

    Args:
        config: the ``loss`` section of a recipe.

    Returns:
        A :class:`CombinedLoss`; call it as ``total, parts = loss(outputs, target)``.

    Raises:
        ValueError: unknown name or option, or no term left.
    """
    terms: dict[str, tuple[float, nn.Module, bool]] = {}
    for name, spec in config.items():
        if name == "adversarial":
            raise ValueError(
                "the adversarial term needs the discriminator: build it with "
                "training.adversarial.build_adversarial and add it in the training step"
            )
        if name not in LOSS_NAMES:
            raise ValueError(f"unknown loss {name!r}; choose from {list(LOSS_NAMES)}")
        if spec is None:  # a recipe variant switches a term of its base recipe off with null
            continue
        options = dict(spec) if isinstance(spec, Mapping) else {"weight": spec}
        if "weight" not in options:
            raise ValueError(f"loss {name!r} has no weight")
        weight = float(options.pop("weight"))
        multiscale = bool(options.pop("multiscale", False))
        # A resize mode only means something for a multi-scale term; elsewhere it is an error.
        resize = options.pop("resize", "bilinear") if multiscale else "bilinear"
        if weight == 0:
            continue
        if name == "perceptual":
            if multiscale:
                raise ValueError("the perceptual loss has no multi-scale form")
            try:
                module: nn.Module = PerceptualLoss(**options)
            except TypeError as exc:
                raise ValueError(f"bad option for loss 'perceptual': {exc}") from None
        else:
            fn = PIXEL_LOSSES[name]
            allowed = set(fn.__code__.co_varnames[: fn.__code__.co_argcount]) - {
                "pred",
                "target",
                "reduction",
            }
            unknown = sorted(set(options) - allowed)
            if unknown:
                raise ValueError(
                    f"unknown options {unknown} for loss {name!r}; it takes {sorted(allowed)}"
                )
            module = PixelLossModule(fn, **options)
            if multiscale:
                module = MultiScaleLoss(module, resize=resize)
        terms[name] = (weight, module, multiscale)
    return CombinedLoss(terms)

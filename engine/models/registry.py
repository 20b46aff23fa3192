"""The model registry: every network the project builds, by name, with its defaults.

The registry itself imports no torch, so the app and the CLI can list architectures on a
machine that only runs ONNX models. :func:`create_model` imports the network's module
(and with it torch) on demand.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelSpec:
    """What the project knows about one architecture before building it.

    Attributes:
        name: registry name, e.g. ``"fpn_mobilenet_dsc"``.
        builder: ``"module:callable"`` that returns the ``nn.Module``.
        summary: one line for tables.
        paper: the publication the design follows.
        input_range: value range of input and output images, ``(low, high)``.
        multiple: H and W are padded (by reflection) to a multiple of this.
        crop_size: recommended square training crop.
        params: parameter count expected from the published structure (MODELS.md).
        params_tolerance: relative tolerance on ``params`` (0 when no reference exists).
        multi_output: whether ``return_all=True`` yields several scales or stages.
        defaults: keyword arguments the builder receives unless overridden.
    """

    name: str
    builder: str
    summary: str
    paper: str
    input_range: tuple[float, float]
    multiple: int
    crop_size: int = 256
    params: int | None = None
    params_tolerance: float = 0.0
    multi_output: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)


_SPECS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry; names are unique."""
    if spec.name in _SPECS:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _SPECS[spec.name] = spec
    return spec


def list_models() -> list[str]:
    """Names of every registered model, in registration order."""
    return list(_SPECS)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; a clear error lists the known names."""
    try:
        return _SPECS[name]
    except KeyError:
        known = ", ".join(_SPECS)
        raise KeyError(f"unknown model {name!r}; registered models: {known}") from None


def create_model(name: str, **kwargs: Any):
    """Build network ``name`` (a ``torch.nn.Module``): its defaults, overridden by ``kwargs``.

    Raises:
        KeyError: the name is not registered.
        ModuleNotFoundError: torch is not installed (``pip install 'rtdeblur[train]'``).
    """
    spec = get_spec(name)
    if importlib.util.find_spec("torch") is None:
        raise ModuleNotFoundError(
            "building PyTorch models needs torch: pip install 'rtdeblur[train]'", name="torch"
        )
    module_name, _, attr = spec.builder.partition(":")
    builder = getattr(importlib.import_module(module_name), attr)
    return builder(**{**spec.defaults, **kwargs})


_M = 1_000_000
_MIMO_PAPER = "Cho et al., Rethinking Coarse-to-Fine Approach in Single Image Deblurring, ICCV 2021"

register(
    ModelSpec(
        name="fpn_mobilenet_v2",
        builder="engine.models.fpn_mobilenet:FPNMobileNet",
        summary="DeblurGAN-v2 generator, FPN on MobileNetV2",
        paper="Kupyn et al., DeblurGAN-v2, ICCV 2019",
        input_range=(-1.0, 1.0),
        multiple=32,
        params=round(2.107 * _M),
        params_tolerance=0.01,
        defaults={"separable": False},
    )
)
register(
    ModelSpec(
        name="fpn_mobilenet_dsc",
        builder="engine.models.fpn_mobilenet:FPNMobileNet",
        summary="DeblurGAN-v2 FPN-MobileNet-DSC, every k×k conv depthwise-separable (real time)",
        paper="Kupyn et al., DeblurGAN-v2, ICCV 2019",
        input_range=(-1.0, 1.0),
        multiple=32,
        params=round(1.19 * _M),
        params_tolerance=0.15,
        defaults={"separable": True},
    )
)
register(
    ModelSpec(
        name="fpn_inception_resnet_v2",
        builder="engine.models.fpn_inception:FPNInceptionResNetV2",
        summary="DeblurGAN-v2 generator, FPN (256/128) on Inception-ResNet-v2",
        paper="Kupyn et al., DeblurGAN-v2, ICCV 2019",
        input_range=(-1.0, 1.0),
        multiple=32,
    )
)
register(
    ModelSpec(
        name="mimo_unet",
        builder="engine.models.mimo_unet:MIMOUNet",
        summary="MIMO-UNet, multi-input multi-output U-Net (8 ResBlocks per level)",
        paper=_MIMO_PAPER,
        input_range=(0.0, 1.0),
        multiple=8,
        params=round(6.807 * _M),
        params_tolerance=0.005,
        multi_output=True,
        defaults={"num_res": 8},
    )
)
register(
    ModelSpec(
        name="mimo_unet_plus",
        builder="engine.models.mimo_unet:MIMOUNet",
        summary="MIMO-UNet+, 20 ResBlocks per level",
        paper=_MIMO_PAPER,
        input_range=(0.0, 1.0),
        multiple=8,
        params=round(16.108 * _M),
        params_tolerance=0.005,
        multi_output=True,
        defaults={"num_res": 20, "dropout": 0.1},
    )
)
register(
    ModelSpec(
        name="srn",
        builder="engine.models.srn:SRNDeblurNet",
        summary="Scale-recurrent network, 3 scales with shared weights and a ConvLSTM",
        paper="Tao et al., Scale-recurrent Network for Deep Image Deblurring, CVPR 2018",
        input_range=(0.0, 1.0),
        multiple=16,
        params=round(8.06 * _M),
        params_tolerance=0.01,
        multi_output=True,
    )
)
register(
    ModelSpec(
        name="lprn",
        builder="engine.models.lprn:LPRN",
        summary="Lightweight progressive residual network, 6 shared-weight stages",
        paper="Lightweight progressive residual network for image deblurring",
        input_range=(0.0, 1.0),
        multiple=1,
        multi_output=True,
        defaults={"stages": 6},
    )
)
register(
    ModelSpec(
        name="nafnet_w32",
        builder="engine.models.nafnet:NAFNet",
        summary="NAFNet width 32, the modern quality reference",
        paper="Chen et al., Simple Baselines for Image Restoration, ECCV 2022",
        input_range=(0.0, 1.0),
        multiple=16,
        params=round(17.1 * _M),
        params_tolerance=0.01,
        defaults={
            "width": 32,
            "enc_blocks": (1, 1, 1, 28),
            "middle_blocks": 1,
            "dec_blocks": (1, 1, 1, 1),
        },
    )
)

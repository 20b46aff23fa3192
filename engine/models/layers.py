"""Small building blocks shared by several networks of the zoo."""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def conv_kxk(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    bias: bool = True,
    separable: bool = False,
) -> nn.Module:
    """A "same"-padded k×k convolution, optionally depthwise-separable.

    The separable form is a depthwise k×k convolution followed by a pointwise 1×1
    convolution, with no norm or activation between them (MobileNet-DSC). It keeps the
    receptive field and cuts weights by about a factor ``k*k``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size k.
        bias: whether the (pointwise) convolution has a bias.
        separable: build the depthwise-separable pair instead of one dense convolution.

    Returns:
        The convolution module.

    Shape:
        - input: :math:`(N, C_{in}, H, W)`
        - output: :math:`(N, C_{out}, H, W)`
    """
    padding = kernel_size // 2
    if not separable or kernel_size == 1:
        return nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=bias)
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            in_channels,
            kernel_size,
            padding=padding,
            groups=in_channels,
            bias=False,
        ),
        nn.Conv2d(in_channels, out_channels, 1, bias=bias),
    )


def norm_layer(kind: str, channels: int) -> nn.Module:
    """A normalisation layer whose train and eval behaviour are both well defined.

    ``"batch"`` is BatchNorm (eval uses running statistics and folds into the preceding
    convolution at export, so tiles and whole frames agree). ``"instance"`` is the upstream
    DeblurGAN-v2 choice, built without running statistics so it computes the same thing in
    train and eval mode. ``"none"`` is the identity.

    Args:
        kind: ``"batch"``, ``"instance"`` or ``"none"``.
        channels: number of channels.

    Returns:
        The normalisation module.
    """
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose 'batch', 'instance' or 'none'")


def read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """Read a checkpoint file of tensors (unwrapping a ``{"state_dict": …}`` container).

    Args:
        path: the ``.pth`` file.
        what: what the file should hold, for error messages (e.g. "MobileNetV2 weights").

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a readable state dict.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        raise ValueError(f"{path} is not a readable PyTorch state dict ({exc})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state


def load_built_layers(
    module: nn.Module,
    state: dict[str, torch.Tensor],
    what: str,
    unbuilt: Callable[[str], bool],
) -> None:
    """Load ``state`` into ``module``, strictly for every layer the module builds.

    Every parameter and buffer of ``module`` must be present with the right shape
    (``num_batches_tracked`` may be absent: older checkpoints predate it). Keys for which
    ``unbuilt(key)`` is true belong to layers that are deliberately not built and are
    ignored; any other unknown key is an error.

    Args:
        module: the network part to load into.
        state: tensors by name.
        what: what the checkpoint should be, for error messages.
        unbuilt: predicate naming the keys of layers that are not built.

    Raises:
        ValueError: listing missing keys, shape mismatches and unknown keys.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    mismatched = [
        f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    unknown = [k for k in state if k not in own and not unbuilt(k)]
    problems = []
    for label, items, sep in (
        ("missing keys", missing, ", "),
        ("shape mismatches", mismatched, "; "),
        ("unknown keys", unknown, ", "),
    ):
        if items:
            more = f" and {len(items) - 8} more" if len(items) > 8 else ""
            problems.append(f"{label}: {sep.join(items[:8])}{more}")
    if problems:
        raise ValueError(f"the file is not {what} ({' | '.join(problems)})")
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


class ResBlock(nn.Module):
    """k×k conv → ReLU → k×k conv, plus the identity; no norm.

    The block of MIMO-UNet (3×3), SRN (5×5) and the progressive residual network (3×3, with a
    ReLU after the sum as in PRN).

    Args:
        channels: feature channels in and out.
        kernel_size: odd kernel size.
        relu_after: apply ReLU to the sum.

    Shape:
        - input: :math:`(N, C, H, W)`
        - output: :math:`(N, C, H, W)`
    """

    def __init__(self, channels: int, kernel_size: int = 3, relu_after: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.relu_after = relu_after

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.conv2(torch.relu(self.conv1(x)))
        return torch.relu(y) if self.relu_after else y


def res_stack(
    channels: int, num_res: int, kernel_size: int = 3, relu_after: bool = False
) -> nn.Sequential:
    """``num_res`` :class:`ResBlock` in a row (an encoder or decoder level)."""
    return nn.Sequential(*(ResBlock(channels, kernel_size, relu_after) for _ in range(num_res)))


def dense_kernel(conv: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The k×k kernel (and bias) of a :func:`conv_kxk` module, dense or depthwise-separable.

    A depthwise k×k followed by a pointwise 1×1 with nothing between them is the dense
    convolution whose kernel is ``pw[o, c] * dw[c]``.
    """
    if isinstance(conv, nn.Conv2d):
        return conv.weight, conv.bias
    dw, pw = conv
    return pw.weight[:, :, 0, 0, None, None] * dw.weight[None, :, 0], pw.bias


# Rows of a 3×3 kernel applied to a nearest-×2-upsampled map, folded onto two rows of the
# low-resolution map: output phase 0 (even rows) reads rows (i-1, i, i), phase 1 (odd rows)
# reads (i, i, i+1), so phase 0 needs rows (i-1, i) and phase 1 rows (i, i+1).
# _PHASE_TAPS[a][u, p]: the weight of 3×3 row p in row u of phase a's 2×2 kernel.
_PHASE_TAPS = ((1, 0, 0), (0, 1, 1)), ((1, 1, 0), (0, 0, 1))
_PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def conv3x3_of_upsampled(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``conv3x3(nearest_upsample_x2(x))`` computed at the low resolution (polyphase).

    Each of the four output phases of a zero-padded 3×3 convolution over a nearest-upsampled
    map is a 2×2 convolution over the map itself (taps merged where the upsampled rows and
    columns repeat). One 2×2 convolution with 4× the output channels and a padding of 1
    computes all four on an (H+1)×(W+1) grid; phase ``(a, b)`` is that grid shifted by
    ``(a, b)``, and a pixel shuffle interleaves the phases. Same result as upsampling first,
    without ever materialising the upsampled input (for the final layer of the FPN generators:
    a 32-channel full-resolution tensor that costs more than the convolution), and 4/9 of the
    multiply-adds of the equivalent 3×3 polyphase convolution.

    Args:
        x: the low-resolution map.
        weight: 3×3 kernel of the convolution that follows the upsampling.
        bias: its bias, or ``None``.

    Returns:
        The convolution's output at twice the resolution of ``x``.

    Shape:
        - x: :math:`(N, C, H, W)`
        - weight: :math:`(O, C, 3, 3)`
        - output: :math:`(N, O, 2H, 2W)`
    """
    taps = weight.new_tensor(_PHASE_TAPS)
    out_ch, in_ch = weight.shape[:2]
    # kernel[a, b, o] = taps[a] @ weight[o, c] @ taps[b]^T: phase-major output channels
    phased = torch.einsum("aup,ocpq,bvq->abocuv", taps, weight, taps)
    phased = phased.reshape(4 * out_ch, in_ch, 2, 2)
    phased_bias = None if bias is None else bias.repeat(4)
    grid = F.conv2d(x, phased, phased_bias, padding=1)  # (N, 4·O, H+1, W+1)
    h, w = x.shape[-2:]
    phases = [
        grid[:, p * out_ch : (p + 1) * out_ch, a : a + h, b : b + w]
        for p, (a, b) in enumerate(_PHASES)
    ]
    # (N, O, 4, H, W) → channels o·4 + a·2 + b, the order the pixel shuffle reads.
    stacked = torch.stack(phases, dim=2).reshape(x.shape[0], 4 * out_ch, h, w)
    return F.pixel_shuffle(stacked, 2)

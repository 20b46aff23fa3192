"""Parameter and multiply-accumulate counts, computed by the project from the built network."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from engine.models.registry import create_model, get_spec


@dataclass(frozen=True)
class Complexity:
    """Size and cost of one network for one frame size.

    Attributes:
        params: number of parameters (every parameter the network builds and uses).
        macs: multiply-accumulates of one forward pass (convolutions, transposed
            convolutions and matrix products), including the padding to the model's multiple.
        height: frame height the MACs were counted for.
        width: frame width the MACs were counted for.
    """

    params: int
    macs: int
    height: int
    width: int


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass of ``model`` on a 1×3×height×width input.

    Run on whatever device ``model`` lives on; on the ``meta`` device nothing is computed,
    only shapes are propagated, so a 2-TMAC network is counted in milliseconds.

    Args:
        model: the network.
        height: input height.
        width: input width.

    Returns:
        The number of multiply-accumulates (half the FLOPs PyTorch's counter reports).
    """
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, height, width, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def model_complexity(name: str, height: int = 720, width: int = 1280) -> Complexity:
    """Parameters of the registered model ``name`` and its MACs for a ``height``×``width`` frame."""
    get_spec(name)  # a clear error for unknown names before building anything
    with torch.device("meta"):
        model = create_model(name)
    return Complexity(count_parameters(model), count_macs(model, height, width), height, width)

"""Exponential moving average of a network's weights, for validation and export."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """A copy of a network whose floating-point state follows the trained one slowly.

    After every optimiser step, ``ema = d·ema + (1 − d)·model`` for every floating-point
    parameter and buffer (BatchNorm running statistics included, so the averaged network is
    consistent with its own statistics); integer buffers (``num_batches_tracked``) are copied.
    With ``warmup`` the decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first
    updates ``n``, so a short run is not dominated by the random initial weights.

    Args:
        model: the network being trained (unwrapped from DDP).
        decay: the decay ``d`` once warmed up.
        warmup: ramp the decay up at the start.

    Attributes:
        module: the averaged network, in eval mode and without gradients.
        updates: how many updates it has seen.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if not self.warmup:
            return self.decay
        n = self.updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current state.

        Args:
            model: the trained network, with the same structure as :attr:`module`.
        """
        d = self.current_decay()
        source = model.state_dict()
        floats_ema, floats_model = [], []
        for key, value in self.module.state_dict().items():
            new = source[key].detach()
            if value.dtype.is_floating_point:
                floats_ema.append(value)
                floats_model.append(new.to(value.dtype))
            else:
                value.copy_(new)
        if floats_ema:
            # One fused kernel per dtype/device group instead of a launch per tensor.
            torch._foreach_lerp_(floats_ema, floats_model, 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        """The averaged weights and the update count, for a checkpoint."""
        return {
            "decay": self.decay,
            "warmup": self.warmup,
            "updates": self.updates,
            "module": self.module.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the decay comes from the config)."""
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])

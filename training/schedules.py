"""Learning-rate schedules of the recipes, as pure functions of the iteration.

Every schedule is a factor ``f(step)`` that multiplies each parameter group's base learning
rate before iteration ``step`` (0-based) runs. Being a function of the step alone, a resumed
run gets exactly the rate an uninterrupted one would: the checkpoint only has to hold the
step (and, for safety, the settings, which :meth:`LRSchedule.load_state_dict` compares).

* ``constant``;
* ``cosine``: half a cosine from 1 to ``min_factor`` over the run (NAFNet);
* ``linear_decay``: constant, then linear to ``end_factor`` from ``start`` on
  (DeblurGAN-v2: linear decay over the second half);
* ``step``: multiply by ``gamma`` every ``every`` steps (MIMO-UNet: halve every 500 epochs);
* ``polynomial``: ``(1 - t/T)^power`` down to ``end_factor`` (SRN: power 0.3).

Each also takes ``warmup``: a linear ramp from ``1/warmup`` to 1 over the first steps. Step
counts (``start``, ``every``, ``warmup``) are absolute iterations when ≥ 1 and fractions of
the run when below 1, so a recipe's shape survives ``--set train.steps=…``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SCHEDULES = ("constant", "cosine", "linear_decay", "step", "polynomial")
_OPTIONS = {
    "constant": {},
    "cosine": {"min_factor": 0.0},
    "linear_decay": {"start": 0.5, "end_factor": 0.0},
    "step": {"every": None, "gamma": 0.5},
    "polynomial": {"power": 1.0, "end_factor": 0.0},
}


def steps_of(value: float | int, total: int, name: str) -> int:
    """An iteration count from a count (≥ 1) or a fraction of ``total`` (< 1).

    Raises:
        ValueError: a negative value.
    """
    value = float(value)
    if value < 0:
        raise ValueError(f"{name} must be ≥ 0, got {value}")
    return round(value * total) if value < 1 else int(value)


class LRSchedule:
    """A learning-rate factor as a function of the iteration; see the module docs.

    Args:
        kind: one of :data:`SCHEDULES`.
        total_steps: iterations of the whole run.
        warmup: iterations (or fraction) of linear warm-up; 0 for none.
        **options: the kind's options (``min_factor``, ``start``, ``end_factor``, ``every``,
            ``gamma``, ``power``).

    Raises:
        ValueError: unknown kind or option, or a value out of range.
    """

    def __init__(self, kind: str, total_steps: int, warmup: float = 0, **options: Any) -> None:
        kind = str(kind).lower().replace("-", "_")
        # null leaves an option at its default (a variant can't delete its base's keys).
        options = {k: v for k, v in options.items() if v is not None}
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; choose from {list(SCHEDULES)}")
        unknown = sorted(set(options) - set(_OPTIONS[kind]))
        if unknown:
            raise ValueError(
                f"unknown options {unknown} for schedule {kind!r}; it takes "
                f"{[*sorted(_OPTIONS[kind]), 'warmup']}"
            )
        if total_steps < 1:
            raise ValueError(f"total_steps must be ≥ 1, got {total_steps}")
        self.kind, self.total = kind, int(total_steps)
        self.warmup = steps_of(warmup, self.total, "warmup")
        opts = {**_OPTIONS[kind], **options}
        self.options = opts
        if kind == "cosine":
            self.min_factor = float(opts["min_factor"])
        elif kind == "linear_decay":
            self.start = steps_of(opts["start"], self.total, "start")
            self.end_factor = float(opts["end_factor"])
        elif kind == "step":
            if opts["every"] is None:
                raise ValueError("the step schedule needs 'every' (iterations or a fraction)")
            self.every = max(1, steps_of(opts["every"], self.total, "every"))
            self.gamma = float(opts["gamma"])
        elif kind == "polynomial":
            self.power = float(opts["power"])
            self.end_factor = float(opts["end_factor"])
            if self.power <= 0:
                raise ValueError(f"power must be > 0, got {self.power}")

    def factor(self, step: int) -> float:
        """The factor for iteration ``step`` (0-based).

        Args:
            step: iterations already done.

        Returns:
            A factor of the base learning rate (1 at the start, after any warm-up).
        """
        t = min(max(int(step), 0), self.total)
        if self.kind == "constant":
            f = 1.0
        elif self.kind == "cosine":
            span = max(1, self.total - self.warmup)
            p = min(1.0, max(0.0, (t - self.warmup) / span))
            f = self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * p))
        elif self.kind == "linear_decay":
            if t < self.start:
                f = 1.0
            else:
                p = (t - self.start) / max(1, self.total - self.start)
                f = 1.0 - (1.0 - self.end_factor) * p
        elif self.kind == "step":
            f = self.gamma ** (t // self.every)
        else:  # polynomial
            f = (1.0 - self.end_factor) * (1.0 - t / self.total) ** self.power + self.end_factor
        if self.warmup and t < self.warmup:
            f *= (t + 1) / self.warmup
        return f

    def apply(self, optimizer: Any, step: int) -> float:
        """Set every parameter group's rate for iteration ``step``.

        The base rate of a group is its ``initial_lr`` entry, set from ``lr`` the first time.

        Args:
            optimizer: a ``torch.optim.Optimizer``.
            step: iterations already done.

        Returns:
            The first group's rate.
        """
        f = self.factor(step)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * f
        return optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict[str, Any]:
        """The settings (the factor depends on nothing else)."""
        return {
            "kind": self.kind,
            "total": self.total,
            "warmup": self.warmup,
            "options": dict(self.options),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> list[str]:
        """Compare saved settings with these.

        The schedule in use is the one the config describes (a resumed run may extend
        ``train.steps`` on purpose); differences are returned for the caller to report.

        Returns:
            Descriptions of the settings that differ.
        """
        mine = self.state_dict()
        return [f"{k}: {state.get(k)!r} → {mine[k]!r}" for k in mine if state.get(k) != mine[k]]

    def __repr__(self) -> str:
        """Kind, length and options."""
        return (
            f"LRSchedule({self.kind!r}, total={self.total}, warmup={self.warmup}, {self.options})"
        )


def build_schedule(config: Mapping[str, Any] | None, total_steps: int) -> LRSchedule:
    """Build a schedule from a recipe's ``schedule`` section.

    Args:
        config: ``{"type": kind, "warmup": …, …options}``; None is ``constant``.
        total_steps: iterations of the run.

    Returns:
        The schedule.

    Raises:
        ValueError: unknown type or option.
    """
    options = dict(config or {})
    kind = options.pop("type", "constant")
    warmup = options.pop("warmup", 0) or 0
    return LRSchedule(kind, total_steps, warmup, **options)

"""What a training run reports: a JSONL log, a PNG plot of it, and a progress bar on stderr.

The log has one JSON object per line: ``{"kind": "train", "step": …, "lr": …, "loss": …,
<loss parts>, "steps_per_s": …}`` every ``log_every`` steps (means over the interval) and
``{"kind": "val", "step": …, "psnr": …, "ssim": …, "psnr_input": …, …}`` after each
validation. Floats are written in full precision, so two runs can be compared exactly.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any


class RunLog:
    """Append-only JSONL log (one object per line, flushed at once).

    Args:
        path: the ``.jsonl`` file; created with its folder.
        enabled: False makes every call a no-op (ranks other than 0).
    """

    def __init__(self, path: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record."""
        if not self.enabled:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(dict(record), allow_nan=True) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records after ``step`` (a resumed run rewrites the steps it repeats)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [r for r in read_log(self.path) if int(r.get("step", 0)) <= step]
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.path)


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a JSONL log (a torn last line, from a crash, is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_run(
    records: Iterable[Mapping[str, Any]], path: str | os.PathLike, title: str = ""
) -> Path:
    """Draw the losses and validation metrics of a run into a PNG.

    Two panels: the training losses (total and parts, log scale) against the step; the
    validation PSNR of the output with the blurry input's as a dashed baseline, and SSIM on
    a second axis. Uses matplotlib's object API with the Agg canvas, so no GUI backend or
    global pyplot state is touched.

    Args:
        records: log records (see the module docs).
        path: the PNG to write (atomically).
        title: figure title.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = list(records)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    fig = Figure(figsize=(10, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_val = fig.subplots(1, 2)
    skip = {"kind", "step", "lr", "time", "steps_per_s", "epoch", "world_size"}
    names = sorted({k for r in train for k in r if k not in skip})
    names = ["loss", *[n for n in names if n != "loss"]] if "loss" in names else names
    for name in names:
        pts = [(r["step"], r[name]) for r in train if _finite(r.get(name))]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax_loss.plot(xs, ys, label=name, linewidth=1.8 if name == "loss" else 1.0)
    if any(_finite(r.get("loss")) and r["loss"] > 0 for r in train):
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_title("training losses")
    if names:
        ax_loss.legend(fontsize=8)
    ax_loss.grid(alpha=0.3)
    if val:
        steps = [r["step"] for r in val]
        ax_val.plot(steps, [r.get("psnr") for r in val], "o-", color="C0", label="PSNR output")
        ax_val.plot(
            steps,
            [r.get("psnr_input") for r in val],
            "--",
            color="C0",
            alpha=0.6,
            label="PSNR input",
        )
        ax_val.set_ylabel("PSNR (dB)")
        ax_ssim = ax_val.twinx()
        ax_ssim.plot(steps, [r.get("ssim") for r in val], "s-", color="C1", label="SSIM output")
        ax_ssim.plot(
            steps,
            [r.get("ssim_input") for r in val],
            "--",
            color="C1",
            alpha=0.6,
            label="SSIM input",
        )
        ax_ssim.set_ylabel("SSIM")
        lines = ax_val.get_lines() + ax_ssim.get_lines()
        ax_val.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="lower right")
    ax_val.set_xlabel("step")
    ax_val.set_title("validation")
    ax_val.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
    return path


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """A one-line text progress bar: step, bar, steps/s, ETA and the latest losses.

    On a terminal the line is redrawn in place (at most ``refresh`` times a second); when
    stderr is a file or a pipe (a cluster job's log), a full line is printed every
    ``every_s`` seconds instead, so logs are not flooded with carriage returns.

    Args:
        total: the last step.
        start: the step the run starts (or resumes) from.
        stream: where to draw (stderr).
        enabled: False draws no bar (``--quiet``, ranks other than 0, tests).
        messages: print :meth:`message` lines even without the bar (False on other ranks).
        refresh: redraws per second on a terminal.
        every_s: seconds between lines when not on a terminal.
    """

    def __init__(
        self,
        total: int,
        start: int = 0,
        stream: IO[str] | None = None,
        enabled: bool = True,
        refresh: float = 4.0,
        every_s: float = 30.0,
        messages: bool = True,
    ) -> None:
        self.total, self.start = int(total), int(start)
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.messages = messages
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = 1.0 / refresh if self.tty else every_s
        self.t0 = time.perf_counter()
        self._last_draw = -math.inf
        self._drawn_step: int | None = None
        self.values: dict[str, float] = {}
        self.step = self.start

    def rate(self) -> float:
        """Steps per second since the start."""
        elapsed = time.perf_counter() - self.t0
        return (self.step - self.start) / elapsed if elapsed > 0 else 0.0

    def line(self, width: int = 24) -> str:
        """The text of the bar."""
        frac = self.step / self.total if self.total else 1.0
        filled = round(width * frac)
        rate = self.rate()
        eta = (self.total - self.step) / rate if rate > 0 else math.inf
        losses = " ".join(f"{k} {v:.4g}" for k, v in self.values.items())
        return (
            f"step {self.step}/{self.total} [{'#' * filled}{'.' * (width - filled)}] "
            f"{100 * frac:5.1f}% {rate:.2f} it/s ETA {_duration(eta)} {losses}"
        ).rstrip()

    def update(
        self, step: int, values: Mapping[str, float] | None = None, force: bool = False
    ) -> None:
        """Record progress and redraw when due.

        Args:
            step: steps completed.
            values: latest losses to show (kept until replaced).
            force: draw now.
        """
        self.step = int(step)
        if values:
            self.values = {k: float(v) for k, v in values.items()}
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._last_draw < self.min_interval and step < self.total:
            return
        self._last_draw = now
        self._drawn_step = self.step
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line())
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if not self.messages:
            return
        if self.enabled and self.tty:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._last_draw = -math.inf
        self._drawn_step = None

    def close(self) -> None:
        """Draw the final state and end the line."""
        if not self.enabled:
            return
        if self._drawn_step != self.step:
            self.update(self.step, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def lineage(init: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """The runs a checkpoint started from (its ``init`` record, that run's, …), newest first."""
    while init:
        yield init
        init = init.get("init")

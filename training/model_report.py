"""``python -m training.model_report``: docs/models.md and the real-blur grid from the cards.

Everything in the page is read from the model cards (parameters, MACs, measured validation
metrics, training steps, time and hardware) or measured while the page is written (CPU speed
at 640×360 through the engine's ONNX Runtime backend), so the page never disagrees with the
files it describes. The grid runs every shipped model on the real blurry photos, which have
no sharp version, for a look by eye.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from engine.backends.select import select_backend
from engine.modelcard import ModelCard, find_cards
from engine.resources import MODELS_DIR
from training.evaluate import plus_minus
from training.run_log import lineage

ROOT = Path(__file__).resolve().parent.parent
# PSNR gains over the blurry input on the validation set that each shipped model must reach.
TARGET_GAIN_DB = {"fpn_mobilenet_dsc": 3.0, "fpn_mobilenet_v2": 3.5, "mimo_unet": 5.0}


def cpu_fps(card: ModelCard, size: tuple[int, int] = (640, 360), runs: int = 20) -> float:
    """Median fps of the card's fp32 model on ONNX Runtime CPU for one frame of ``size``."""
    backend = select_backend(card, "onnxruntime", device="cpu", precision="fp32").backend
    frame = np.random.default_rng(0).integers(0, 256, (1, size[1], size[0], 3), np.uint8)
    backend.warmup(frame.shape)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        backend.infer(frame)
        times.append(time.perf_counter() - t0)
    backend.close()
    return 1.0 / statistics.median(times)


def _f(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _lineage(training: dict) -> str:
    """``variant`` of the run, after the variants of the runs it started from (model.init)."""
    names = [training.get("variant") or "paper"]
    for init in lineage(training.get("initialised_from")):
        names.append((init.get("variant") or "paper") if init.get("recipe") else "weights file")
    return " after ".join(names)


def model_rows(cards: list[ModelCard]) -> list[str]:
    """One Markdown table row per card."""
    rows = []
    for card in cards:
        m = card.metrics or {}
        t = card.training or {}
        target = TARGET_GAIN_DB.get(card.architecture)
        gain = m.get("psnr_gain")
        verdict = (
            "—" if target is None or gain is None else ("met" if gain >= target else "not met")
        )
        seconds = t.get("train_seconds")
        hardware = "; ".join(t.get("hardware") or []) or "not recorded"
        rows.append(
            "| "
            + " | ".join(
                [
                    card.name,
                    f"{(card.params or 0) / 1e6:.2f} M",
                    f"{(card.macs_720p or 0) / 1e9:.1f}",
                    f"{cpu_fps(card):.1f}",
                    f"{_f(m.get('psnr'), '.2f')} ({_f(m.get('psnr_input'), '.2f')})",
                    f"{_f(gain, '+.2f')}{plus_minus(m.get('psnr_gain_se'))} dB / "
                    f"{_f(target, '+.1f')} dB: {verdict}",
                    f"{_f(m.get('ssim'), '.4f')} ({_f(m.get('ssim_input'), '.4f')})",
                    f"{_f(m.get('lpips'), '.4f')} ({_f(m.get('lpips_input'), '.4f')})",
                    f"{t.get('recipe', '—')}/{_lineage(t)}, {t.get('steps', '—')} steps",
                    f"{_f(None if seconds is None else seconds / 60, '.0f')} min on {hardware}",
                ]
            )
            + " |"
        )
    return rows


def int8_rows(cards: list[ModelCard]) -> list[str]:
    """One Markdown table row per card that records a measured INT8 file."""
    from engine.backends.onnxruntime_backend import validated_int8

    rows = []
    for card in cards:
        m = card.metrics or {}
        q = m.get("int8")
        if not isinstance(q, dict):
            continue
        default = "yes" if validated_int8(card) is not None else "no"
        cells = [
            card.name,
            f"{_f(q.get('psnr'), '.2f')} ({_f(m.get('psnr'), '.2f')})",
            f"{_f(q.get('psnr_cost'), '.2f')}{plus_minus(q.get('psnr_cost_se'))} dB",
            f"{_f(q.get('psnr_cost_worst'), '.2f')} dB",
            f"{_f(q.get('ssim'), '.4f')} ({_f(m.get('ssim'), '.4f')})",
            default,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def missing_models(cards: list[ModelCard]) -> list[str]:
    """The architectures with a quality target that no shipped card provides."""
    shipped = {card.architecture for card in cards}
    return [name for name in TARGET_GAIN_DB if name not in shipped]


def write_grid(cards: list[ModelCard], photos: list[Path], out: Path, height: int = 300) -> Path:
    """Input | each model, one row per photo, labelled, as a JPEG."""
    backends = [
        (c.name, select_backend(c, "onnxruntime", device="cpu", precision="fp32").backend)
        for c in cards
    ]
    rows = []
    for photo in photos:
        bgr = cv2.imread(str(photo), cv2.IMREAD_COLOR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        tiles = [("input: " + photo.name, rgb)]
        tiles += [(name, backend.infer(rgb[None])[0].copy()) for name, backend in backends]
        scaled = []
        for label, img in tiles:
            w = round(img.shape[1] * height / img.shape[0])
            tile = cv2.resize(img, (w, height), interpolation=cv2.INTER_AREA)
            cv2.rectangle(tile, (0, 0), (w, 22), (0, 0, 0), -1)
            cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
            scaled.append(tile)
        rows.append(np.hstack(scaled))
    width = max(r.shape[1] for r in rows)
    grid = np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    for _, backend in backends:
        backend.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the page (and the grid) from the cards in the models folder."""
    parser = argparse.ArgumentParser(prog="python -m training.model_report", description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--real-blur", type=Path, default=ROOT.parent / "shared/data/real-blur")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/models.md")
    parser.add_argument("--grid", type=Path, default=ROOT / "docs/real_blur_grid.jpg")
    args = parser.parse_args(argv)
    cards, problems = find_cards(args.models_dir)
    for problem in problems:
        print(f"skipped: {problem}")
    if not cards:
        print(f"no model cards in {args.models_dir}")
        return 1
    photos = sorted(p for p in args.real_blur.glob("*") if p.suffix.lower() in {".jpg", ".png"})
    grid = write_grid(cards, photos, args.grid) if photos else None
    header = (
        "| model | params | GMAC @1280×720 | CPU fps @640×360 | val PSNR dB (input) "
        "| PSNR gain / target | val SSIM (input) | val LPIPS (input) | recipe | training |"
    )
    lines = [header, "|" + "---|" * 10, *model_rows(cards)]
    text = [
        "# Shipped models",
        "",
        "Generated by `python -m training.model_report` from the model cards in "
        "`resources/models/`; CPU speed measured when the page was written (ONNX Runtime, "
        "fp32, 2 threads; see docs/benchmarks.md for the machine). Validation: the fixed "
        "synthetic blur of `photos/val`, the same for every model (each card's "
        "`metrics.dataset` says how many crops; `rtdeblur eval --model NAME --data "
        "photos/val` measures the same set); ± is the standard error of the mean gain over "
        "those crops.",
        "",
        *lines,
        "",
    ]
    missing = missing_models(cards)
    if missing:
        text += [
            "Not shipped: "
            + ", ".join(f"{name} (target +{TARGET_GAIN_DB[name]:.1f} dB)" for name in missing)
            + "; resources/README.md says why.",
            "",
        ]
    quantised = int8_rows(cards)
    if quantised:
        text += [
            "## INT8 on the CPU",
            "",
            "Measured by `rtdeblur export --int8` on the same validation crops as above, "
            "against the fp32 file's output: ONNX Runtime on the CPU runs the INT8 file by "
            "default when it costs at most 0.2 dB (± is the standard error of the mean cost; "
            "`--precision fp32` runs fp32).",
            "",
            "| model | INT8 val PSNR dB (fp32) | cost ± se | worst crop | INT8 val SSIM (fp32) "
            "| CPU default |",
            "|" + "---|" * 6,
            *quantised,
            "",
        ]
    if grid:
        text += [
            "## Real blurry photos (no sharp version exists)",
            "",
            f"Input, then each model; {', '.join(p.name for p in photos)}.",
            "",
            f"![input and every model on the real blurry photos]({grid.name})",
            "",
        ]
    args.out.write_text("\n".join(text))
    print(f"wrote {args.out}" + (f" and {grid}" if grid else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

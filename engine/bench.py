"""``rtdeblur bench``: models × backends × frame sizes × precisions, timed side by side.

Every configuration is timed in the same process as a reference path (the upstream
DeblurGAN-v2 way of running FPN-MobileNetV2), and its speed is printed as a ratio to it:
on machines whose speed swings between runs, ratios measured side by side are what compare.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from engine.backends.base import BackendUnavailableError
from engine.modelcard import ModelCard


@dataclass
class BenchResult:
    """One timed configuration."""

    model: str
    backend: str
    device: str
    precision: str
    size: str
    batch: int
    streams: int = 1
    fps: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    vs_reference: float | None = None
    note: str = ""


def _rss_mb(field: str = "VmRSS") -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_peak_rss() -> None:
    # Writing 5 to clear_refs resets the kernel's peak-RSS mark (VmHWM) for this process.
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def time_calls(fn: Callable[[], object], runs: int, warmup: int) -> list[float]:
    """Seconds per call of ``fn`` over ``runs`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summarise(times: list[float], batch: int) -> tuple[float, float, float]:
    """(fps, p50 ms, p95 ms) from per-call times of batches of ``batch`` frames."""
    p50 = statistics.median(times)
    p95 = float(np.percentile(times, 95))
    return batch / p50, 1000 * p50, 1000 * p95


def parse_size(text: str) -> tuple[int, int]:
    """``"640x360"`` → (width, height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes look like 640x360, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"frame size must be at least 32x32, got {text!r}")
    return w, h


class ModelSource:
    """A model card to benchmark: a shipped card, or a registered network exported on the fly.

    Registered networks get random (seeded) weights: speed does not depend on the values.
    """

    def __init__(self, spec: str, workdir: Path) -> None:
        self.spec = spec
        self.workdir = workdir
        self._card: ModelCard | None = None

    def card(self) -> ModelCard:
        if self._card is None:
            self._card = self._resolve()
        return self._card

    def _resolve(self) -> ModelCard:
        from engine.models.registry import list_models
        from engine.resources import bundled_model_card, resolve_model

        if self.spec not in list_models() or bundled_model_card(self.spec) is not None:
            return resolve_model(self.spec)
        try:
            export = importlib.import_module("engine.models.export")
        except ModuleNotFoundError as exc:
            raise BackendUnavailableError(
                f"{self.spec!r} is not a shipped model; exporting it needs torch "
                f"({exc.name} missing): pip install 'rtdeblur[train]'"
            ) from None
        return export.export_registered(self.spec, self.workdir / f"{self.spec}.onnx", seed=0)


def run_reference(size: tuple[int, int], runs: int, warmup: int) -> BenchResult:
    """Time the upstream-style FPN-MobileNetV2 path on one frame size."""
    w, h = size
    result = BenchResult("fpn_mobilenet_v2 (upstream way)", "torch eager", "cpu", "fp32", "", 1)
    result.size = f"{w}x{h}"
    try:
        reference = importlib.import_module("engine.models.reference")
    except ModuleNotFoundError as exc:
        result.note = f"skipped: {exc.name} not installed"
        return result
    ref = reference.UpstreamReference(threads=physical_cores())
    frame = _frame(h, w)[0]
    _reset_peak_rss()
    times = time_calls(lambda: ref(frame), runs, warmup)
    result.fps, result.p50_ms, result.p95_ms = summarise(times, 1)
    result.peak_rss_mb = _rss_mb("VmHWM")
    return result


def physical_cores() -> int:
    """Physical CPU cores (unique core ids), or the logical count if that cannot be read."""
    try:
        from engine.backends.onnxruntime_backend import physical_core_count

        return physical_core_count()
    except ImportError:
        return os.cpu_count() or 1


def _frame(h: int, w: int, batch: int = 1) -> np.ndarray:
    # Timing does not depend on content; a fixed pseudo-random frame keeps runs comparable.
    return np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)


def run_config(
    card: ModelCard,
    backend: str,
    device: str,
    precision: str,
    size: tuple[int, int],
    batch: int,
    runs: int,
    warmup: int,
    options: dict,
) -> BenchResult:
    """Build one backend and time ``infer`` on batches of one frame size.

    ``options["streams"]`` > 1 runs that many frames side by side (at least one each).
    """
    from engine.backends.select import select_backend

    w, h = size
    streams = int(options.get("streams", 1))
    batch = max(batch, streams)
    result = BenchResult(card.name, backend, device, precision, f"{w}x{h}", batch, streams)
    label = backend + (" graphs" if options.get("cuda_graphs") else "")
    result.backend = label
    try:
        sel = select_backend(card, backend, device=device, precision=precision, **options)
    except (BackendUnavailableError, ValueError) as exc:
        result.note = f"unavailable: {exc}"
        return result
    be = sel.backend
    frames = _frame(h, w, batch)
    gpu = device.startswith("cuda")
    if gpu:
        torch = importlib.import_module("torch")
        torch.cuda.reset_peak_memory_stats()
    _reset_peak_rss()
    try:
        be.warmup(frames.shape)
        times = time_calls(lambda: be.infer(frames), runs, warmup)
    except Exception as exc:  # a backend failing at run time is a result, not a crash
        result.note = f"failed: {exc}"
        return result
    finally:
        be.close()
    result.fps, result.p50_ms, result.p95_ms = summarise(times, batch)
    result.peak_rss_mb = _rss_mb("VmHWM")
    if gpu:
        result.peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20
    return result


def soak(card: ModelCard, backend: str, device: str, precision: str, size, seconds: float):
    """Run the pipeline for ``seconds``; returns (frames, RSS samples (t, MB), slope MB/min)."""
    from engine.backends.select import select_backend
    from engine.pipeline.runner import FramePipeline

    w, h = size
    pipeline = FramePipeline(select_backend(card, backend, device, precision).backend)
    rng = np.random.default_rng(1)
    pool = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(8)]
    samples: list[tuple[float, float]] = []
    start = time.perf_counter()
    next_sample = start
    frames = 0
    while (now := time.perf_counter()) - start < seconds:
        pipeline.process(pool[frames % len(pool)])
        frames += 1
        if now >= next_sample:
            samples.append((now - start, _rss_mb() or 0.0))
            next_sample = now + 1.0
            if len(samples) % 30 == 0:
                print(f"  soak {now - start:5.0f}s  {frames} frames  RSS {samples[-1][1]:.1f} MB")
    # The first seconds include allocator warm-up; the slope is fitted on the rest.
    steady = [s for s in samples if s[0] >= min(10.0, seconds / 5)] or samples
    if len(steady) >= 2:
        t, m = np.array(steady).T
        slope = float(np.polyfit(t, m, 1)[0]) * 60.0
    else:
        slope = float("nan")
    return frames, samples, slope


def process_throughput(
    card: ModelCard, backend: str, device: str, precision: str, clip: Path, rounds: int = 3
) -> dict:
    """``rtdeblur process`` speed on ``clip`` against the backend alone on the same frames.

    Each round times the backend on every decoded frame of the clip (engine only), then runs
    the offline job on the clip (decode, inference and encode, file written and renamed);
    alternating the two keeps the ratio fair on a machine whose speed drifts.

    Returns:
        Per-round fps of both, their medians and the ratio of the medians.
    """
    from engine.backends.select import select_backend
    from engine.pipeline.runner import FramePipeline
    from engine.process import ProcessOptions, process_files
    from engine.video.sources import FileSource

    with FileSource(clip) as source:
        frames = [timed.image for timed in source]
    backend_obj = select_backend(card, backend, device, precision).backend
    pipeline = FramePipeline(backend_obj)
    engine_fps, process_fps = [], []
    with tempfile.TemporaryDirectory(prefix="rtdeblur-process-bench-") as out:
        backend_obj.warmup((1, *frames[0].shape))
        for _ in range(rounds):
            t0 = time.perf_counter()
            for frame in frames:
                backend_obj.infer(frame[None])
            engine_fps.append(len(frames) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            (result,) = process_files([clip], out, pipeline, ProcessOptions(overwrite=True))
            elapsed = time.perf_counter() - t0
            if result.status != "ok":
                raise RuntimeError(f"processing {clip} failed: {result.reason}")
            process_fps.append(result.frames / elapsed)
    backend_obj.close()
    e, p = statistics.median(engine_fps), statistics.median(process_fps)
    return {
        "clip": str(clip),
        "frames": len(frames),
        "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
        "engine_fps": engine_fps,
        "process_fps": process_fps,
        "engine_fps_median": e,
        "process_fps_median": p,
        "ratio": p / e,
    }


def format_table(results: list[BenchResult]) -> str:
    """Aligned text table of the results."""
    header = ("model", "backend", "device", "prec", "size", "batch", "streams", "fps", "p50 ms")
    header += ("p95 ms",)
    header += ("peak RSS MB", "peak GPU MB", "× reference", "note")
    rows = [_cells(r, note_width=90) for r in results]
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def format_markdown(
    results: list[BenchResult], machine: str, soak_report: dict | None, args: argparse.Namespace
) -> str:
    """The results as a Markdown table, with the machine and the command that produced them."""
    cols = ("model", "backend", "device", "precision", "size", "batch", "streams", "fps")
    cols += ("p50 ms",)
    cols += ("p95 ms", "peak RSS MB", "peak GPU MB", "× reference", "note")
    lines = [
        f"Machine: {machine}. Runs per configuration: {args.runs} after {args.warmup} warm-up.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in results:
        cells = _cells(r, note_width=120)
        lines.append("| " + " | ".join((*cells[:-1], cells[-1].replace("|", "/"))) + " |")
    if soak_report:
        s = soak_report
        lines += [
            "",
            f"Soak: {s['frames']} frames in {s['seconds']:.0f} s; resident memory "
            f"{s['rss_samples'][0][1]:.1f} → {s['rss_samples'][-1][1]:.1f} MB; "
            f"slope after warm-up {s['slope_mb_per_min']:+.3f} MB/min.",
        ]
    return "\n".join(lines) + "\n"


def _cells(r: BenchResult, note_width: int) -> tuple[str, ...]:
    """The printed cells of one result, in the column order of both tables."""
    return (
        r.model,
        r.backend,
        r.device,
        r.precision,
        r.size,
        str(r.batch),
        str(r.streams),
        _fmt(r.fps, 1),
        _fmt(r.p50_ms, 1),
        _fmt(r.p95_ms, 1),
        _fmt(r.peak_rss_mb, 0),
        _fmt(r.peak_gpu_mb, 0),
        _fmt(r.vs_reference, 2),
        r.note[:note_width],
    )


def _fmt(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` sub-command."""
    p = subparsers.add_parser(
        "bench",
        help="time models × backends × frame sizes × precisions",
        description="Median fps over repeated runs after warm-up, p50/p95 latency and peak "
        "memory for every configuration, each also as a ratio to the upstream DeblurGAN-v2 "
        "reference path timed in the same run.",
    )
    p.add_argument("--models", default="fpn_mobilenet_dsc", help="comma-separated names/cards")
    p.add_argument("--backends", default="onnxruntime", help="comma-separated: onnxruntime,torch,…")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--sizes", default="640x360", help="comma-separated WxH")
    p.add_argument("--precisions", default="fp32", help="comma-separated: fp32,fp16,bf16,int8")
    p.add_argument("--batch", type=int, default=1, help="frames per call")
    p.add_argument(
        "--streams",
        default="1",
        help="comma-separated: frames run side by side on the CPU (ONNX Runtime), each on "
        "cores/N threads; a call then takes at least N frames and fps counts them all",
    )
    p.add_argument("--runs", type=int, default=30, help="timed runs per configuration (≥ 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    p.add_argument(
        "--cuda-graphs",
        choices=("on", "off", "both"),
        default="on",
        help="torch backend on CUDA: capture CUDA graphs (default on)",
    )
    p.add_argument("--no-reference", action="store_true", help="skip the reference path")
    p.add_argument(
        "--process-clip",
        metavar="CLIP",
        help="also time `rtdeblur process` on CLIP against the first configuration's backend "
        "alone on the same frames, and print the ratio",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    p.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="then run the first configuration "
        "continuously for SECONDS and report the resident-memory slope",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the table."""
    if args.runs < 20:
        print("rtdeblur bench: --runs must be at least 20 for a stable median", file=sys.stderr)
        return 2
    try:
        sizes = [parse_size(s) for s in args.sizes.split(",")]
    except argparse.ArgumentTypeError as exc:
        print(f"rtdeblur bench: {exc}", file=sys.stderr)
        return 2
    graphs = {"on": [True], "off": [False], "both": [True, False]}[args.cuda_graphs]
    try:
        streams = sorted({int(k) for k in args.streams.split(",")})
    except ValueError:
        streams = []
    if not streams or streams[0] < 1:
        print(f"rtdeblur bench: --streams takes whole numbers ≥ 1, got {args.streams!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    cpu = args.device == "cpu"
    results: list[BenchResult] = []
    machine = describe_machine(args.device)
    print(f"machine: {machine}")
    with tempfile.TemporaryDirectory(prefix="rtdeblur-bench-") as tmp:
        for size in sizes:
            ref = None
            if not args.no_reference:
                ref = run_reference(size, args.runs, args.warmup)
                results.append(ref)
            for model in args.models.split(","):
                try:
                    card = ModelSource(model, Path(tmp)).card()
                except Exception as exc:
                    print(f"rtdeblur bench: {model}: {exc}", file=sys.stderr)
                    return 2
                for backend in args.backends.split(","):
                    for precision in args.precisions.split(","):
                        variants = graphs if backend == "torch" and args.device != "cpu" else [None]
                        # Streams split CPU threads between ONNX Runtime sessions only.
                        counts = streams if backend == "onnxruntime" and cpu else [1]
                        for g, k in itertools.product(variants, counts):
                            options = {} if g is None else {"cuda_graphs": g}
                            if k > 1:
                                options["streams"] = k
                            r = run_config(
                                card,
                                backend,
                                args.device,
                                precision,
                                size,
                                args.batch,
                                args.runs,
                                args.warmup,
                                options,
                            )
                            if ref is not None and ref.fps and r.fps:
                                r.vs_reference = r.fps / ref.fps
                            results.append(r)
                            print(format_table([r]).splitlines()[-1], flush=True)
        print()
        print(format_table(results))
        soak_report = None
        if args.soak:
            card = ModelSource(args.models.split(",")[0], Path(tmp)).card()
            b, p = args.backends.split(",")[0], args.precisions.split(",")[0]
            print(
                f"\nsoak: {card.name} on {b} {p} {args.sizes.split(',')[0]} for {args.soak:.0f} s"
            )
            frames, samples, slope = soak(card, b, args.device, p, sizes[0], args.soak)
            print(
                f"soak: {frames} frames in {args.soak:.0f} s ({frames / args.soak:.1f} fps); "
                f"RSS {samples[0][1]:.1f} → {samples[-1][1]:.1f} MB; "
                f"slope {slope:+.3f} MB/min after warm-up"
            )
            soak_report = {
                "frames": frames,
                "seconds": args.soak,
                "rss_samples": samples,
                "slope_mb_per_min": slope,
            }
    process_report = None
    if args.process_clip:
        card = ModelSource(args.models.split(",")[0], Path(tempfile.mkdtemp())).card()
        b, p = args.backends.split(",")[0], args.precisions.split(",")[0]
        process_report = process_throughput(card, b, args.device, p, Path(args.process_clip))
        r = process_report
        print(
            f"\nprocess: {r['frames']} frames of {r['size']} ({Path(r['clip']).name}); "
            f"rtdeblur process {r['process_fps_median']:.1f} fps vs backend alone "
            f"{r['engine_fps_median']:.1f} fps: {100 * r['ratio']:.0f} % "
            f"(medians of {len(r['engine_fps'])} alternating rounds)"
        )
    if args.markdown:
        text = format_markdown(results, machine, soak_report, args)
        if process_report:
            r = process_report
            text += (
                f"\n`rtdeblur process` on {r['frames']} frames of {r['size']} "
                f"({Path(r['clip']).name}): {r['process_fps_median']:.1f} fps against the "
                f"backend alone on the same frames {r['engine_fps_median']:.1f} fps = "
                f"{100 * r['ratio']:.0f} % (medians of {len(r['engine_fps'])} alternating "
                "rounds).\n"
            )
        Path(args.markdown).write_text(text)
        print(f"wrote {args.markdown}")
    if args.json:
        payload = {
            "machine": machine,
            "results": [asdict(r) for r in results],
            "soak": soak_report,
            "process": process_report,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def describe_machine(device: str) -> str:
    """CPU model and core counts, plus the GPU name when benchmarking on CUDA."""
    cpu = "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = f"{cpu}, {physical_cores()} physical / {os.cpu_count()} logical cores"
    if device.startswith("cuda"):
        with contextlib.suppress(Exception):
            torch = importlib.import_module("torch")
            text += f"; GPU {torch.cuda.get_device_name()}"
    return text

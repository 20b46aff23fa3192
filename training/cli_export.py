"""``rtdeblur export``: a trained checkpoint (or a registry network) → ONNX + model card.

::

    rtdeblur export runs/fpn_mobilenet_dsc/best.pt -o models/fpn_mobilenet_dsc.onnx --fp16

1. the network is rebuilt from the checkpoint's config and loaded with its EMA weights
   (``--no-ema``: the raw ones);
2. it is exported to ONNX with dynamic batch, height and width;
3. ONNX Runtime is checked against PyTorch on a real photo (from the recipe's validation
   folder, or ``--photo``) and on an odd-sized crop of it; the max error is printed and must be
   below 1/255 of the value range, else the command fails and writes no card;
4. ``--fp16`` also writes ``NAME.fp16.onnx`` and prints its max error in 8-bit levels on the
   photo and on every photo of the recipe's validation folder (up to its ``limit``); a copy
   that differs by more than ``--fp16-tolerance`` levels (default 2) on any of them is not
   kept, and the card names no fp16 file;
5. the validation set of the recipe is run through the written ONNX file with the engine's
   ONNX Runtime backend: PSNR, SSIM and LPIPS of output and input, and the gains;
   ``--int8 PHOTOS`` also writes ``NAME.int8.onnx`` (static INT8, calibrated on PHOTOS: never
   the validation photos), runs the same set through it and records its cost against fp32;
   a copy that loses more than ``--int8-max-cost`` dB of PSNR (default 0.2) is not kept.
   The card's ``metrics["int8"]`` names the file by its sha256: ONNX Runtime on the CPU then
   runs that file by default;
6. the model card ``NAME.json`` (DESIGN.md) is written beside the ONNX file, with
   ``NAME.pth`` (the exported weights, for the torch backend) when the network has the
   registry's structure.

A registry name instead of a checkpoint exports that network with random (seeded) or
``--weights`` weights: for benchmarks and plumbing, without measured metrics.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from training.run_log import lineage

#: fp32 ONNX vs PyTorch must agree within this fraction of the value range (one 8-bit level).
FP32_TOLERANCE = 1.0 / 255.0
#: An fp16 copy further than this from fp32 (8-bit levels, on the parity photo) is not kept.
FP16_TOLERANCE_LEVELS = 2.0
#: Photos the INT8 copy is calibrated on (spread evenly over the folder given).
INT8_IMAGES = 64


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="export a trained checkpoint (or a registered network) to ONNX with a model card",
        description="Export a training checkpoint (or a registered network) to ONNX with "
        "dynamic height and width, check it in ONNX Runtime against PyTorch on a real photo, "
        "optionally write an fp16 copy, measure the validation metrics and write the model card.",
    )
    parser.add_argument(
        "source", metavar="CHECKPOINT", help="training checkpoint (.pt), or a registered model name"
    )
    parser.add_argument("-o", "--output", required=True, help="destination NAME.onnx")
    parser.add_argument("--fp16", action="store_true", help="also write NAME.fp16.onnx")
    parser.add_argument(
        "--fp16-tolerance",
        type=float,
        default=FP16_TOLERANCE_LEVELS,
        metavar="LEVELS",
        help="keep the fp16 copy only if it is within this many 8-bit levels of fp32 on the "
        f"photo and every validation photo (default {FP16_TOLERANCE_LEVELS:g})",
    )
    parser.add_argument(
        "--int8",
        metavar="PHOTOS",
        type=Path,
        help="also write NAME.int8.onnx, calibrated on the photos in this folder (training "
        "photos, not validation ones), and measure what it costs on the validation set",
    )
    parser.add_argument(
        "--int8-images",
        type=int,
        default=INT8_IMAGES,
        metavar="N",
        help=f"calibration photos, spread over the folder (default {INT8_IMAGES})",
    )
    parser.add_argument(
        "--int8-method",
        choices=("percentile", "minmax"),
        default="percentile",
        help="activation ranges of the INT8 copy (default percentile)",
    )
    parser.add_argument(
        "--int8-max-cost",
        type=float,
        metavar="DB",
        help="keep the INT8 copy only if its validation PSNR is at most this far below fp32 "
        "(default: the engine's limit for running INT8 by default, 0.2 dB)",
    )
    parser.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="export the EMA weights (default: when the checkpoint has them)",
    )
    parser.add_argument(
        "--photo", help="real photo for the parity check (default: first val photo)"
    )
    parser.add_argument(
        "--photo-max-side",
        type=int,
        metavar="PX",
        help="shrink the photo (area interpolation) so its longer side is at most PX, for "
        "heavy networks on a CPU (default: the photo as it is)",
    )
    parser.add_argument(
        "--weights", help="state dict (.pth) for a registry-name export (default: random)"
    )
    parser.add_argument("--version", default="1", help="model version for the card (default 1)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (≥ 17, default 17)")
    parser.add_argument(
        "--no-metrics", action="store_true", help="skip measuring the validation metrics"
    )
    parser.add_argument(
        "--val-limit", type=int, help="measure on the first N validation images only"
    )
    parser.add_argument(
        "--val-per-image",
        type=int,
        metavar="N",
        help="synthetic validation pairs per photo for the card's metrics (default: 8, more "
        "draws of the recipe's validation blur than the one per photo it chose checkpoints on)",
    )
    parser.set_defaults(func=run)


def _fail(message: str, status: int = 2) -> int:
    print(f"rtdeblur export: {message}", file=sys.stderr)
    return status


def _default_photo_dir() -> Path:
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "photos" / "val"


def _validation_photos(config: dict[str, Any] | None) -> list[Path]:
    """The photos of the recipe's validation folder (the blurred ones of a paired set), up to
    its ``limit``; empty when the recipe names no existing folder."""
    from training.data.paired import find_pairs, list_images

    val = (config or {}).get("data", {}).get("val") or {}
    root = val.get("root")
    if not (root and Path(root).is_dir()):
        return []
    found = [b for b, _ in find_pairs(root)] if val.get("type") == "paired" else list_images(root)
    return found[: int(val["limit"])] if val.get("limit") else found


def _pick_photo(explicit: str | None, config: dict[str, Any] | None) -> Path:
    from training.data.paired import DatasetError, list_images

    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise DatasetError(f"photo not found: {path}")
        return path
    found = _validation_photos(config)
    if found:
        return found[0]
    folder = _default_photo_dir()
    if folder.is_dir():
        return list_images(folder)[0]
    raise DatasetError("no photo for the parity check: pass --photo PATH")


def _shrink(photo: Any, max_side: int | None) -> Any:
    """The photo scaled down (area interpolation) to ``max_side`` pixels on its longer side."""
    import cv2

    h, w = photo.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return photo
    if max_side < 16:
        raise ValueError(f"--photo-max-side must be at least 16, got {max_side}")
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(photo, size, interpolation=cv2.INTER_AREA)


def _structure_is_registry(name: str, kwargs: dict[str, Any]) -> bool:
    """Whether create_model(name) builds this network (so the torch backend can load it)."""
    from engine.models import get_spec

    defaults = get_spec(name).defaults
    return all(defaults.get(k, _MISSING) == v for k, v in kwargs.items())


_MISSING = object()


def _load_source(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any] | None, dict]:
    """(model, spec, checkpoint or None, info) for a checkpoint path or a registry name."""
    import torch

    from engine.models import create_model, get_spec
    from training.checkpoint import load_checkpoint
    from training.evaluate import model_from_checkpoint

    if os.path.isfile(args.source):
        if args.weights:
            raise ValueError("--weights is for registry names; a checkpoint brings its weights")
        ckpt = load_checkpoint(args.source)
        model, spec, used_ema = model_from_checkpoint(ckpt, ema=args.ema)
        return model, spec, ckpt, {"ema": used_ema}
    try:
        spec = get_spec(args.source)
    except KeyError as exc:
        raise ValueError(
            f"{args.source} is neither a checkpoint file nor a registered model ({exc.args[0]})"
        ) from None
    torch.manual_seed(0)
    model = create_model(spec.name)
    if args.weights:
        state = torch.load(args.weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and state.get("format") and "model" in state:
            raise ValueError(f"{args.weights} is a training checkpoint: export it directly")
        model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
    model.eval()
    return model, spec, None, {"ema": False}


def parity_inputs(photo: Any, input_range: tuple[float, float]) -> list[Any]:
    """The photo (whole) and an odd-sized crop of it, as float32 NCHW model inputs.

    Shape:
        - photo: :math:`(H, W, 3)` uint8
        - outputs: :math:`(1, 3, H, W)` and :math:`(1, 3, h, w)` with odd h, w
    """
    import numpy as np

    from engine.pipeline.convert import FrameConverter

    h, w = photo.shape[:2]
    crop = photo[: max(9, (h * 2 // 5) | 1), : max(9, (w * 3 // 7) | 1)]
    conv = FrameConverter(input_range, 1)
    return [np.array(conv.to_input(img[None]), copy=True) for img in (photo, crop)]


def run(args: argparse.Namespace) -> int:
    """Export, check, measure and write the card; returns the exit status."""
    from engine.assets import AssetNotFoundError
    from engine.backends.fp16_onnx import convert_to_fp16, fp16_max_error
    from engine.modelcard import ModelCard, sha256_of
    from training.checkpoint import CheckpointError
    from training.data.paired import DatasetError, read_rgb
    from training.evaluate import plus_minus, structural_kwargs
    from training.export import export_onnx, onnx_parity

    output = Path(args.output)
    if output.suffix != ".onnx":
        return _fail(f"-o must name a .onnx file, got {output}")
    if args.val_per_image is not None and args.val_per_image < 1:
        return _fail(f"--val-per-image must be ≥ 1, got {args.val_per_image}")
    if args.int8 is not None:
        if args.no_metrics:
            return _fail("--int8 is kept only after measuring its cost: drop --no-metrics")
        if not args.int8.is_dir():
            return _fail(f"--int8: no such folder of photos: {args.int8}")
        if args.int8_images < 1:
            return _fail(f"--int8-images must be ≥ 1, got {args.int8_images}")
    try:
        model, spec, ckpt, info = _load_source(args)
        config = ckpt["config"] if ckpt else None
        if args.int8 is not None and not (config and config["data"].get("val")):
            raise ValueError(
                "--int8 needs a training checkpoint whose recipe has a validation set, to "
                "measure what INT8 costs"
            )
        photo_path = _pick_photo(args.photo, config)
        photo = _shrink(read_rgb(photo_path), args.photo_max_side)
    except (CheckpointError, DatasetError, ValueError, OSError, RuntimeError) as exc:
        return _fail(str(exc))

    lo, hi = (float(v) for v in spec.input_range)
    path = export_onnx(model, output, opset=args.opset)
    print(f"wrote {path}")
    inputs = parity_inputs(photo, (lo, hi))
    errors = onnx_parity(model, path, inputs)
    worst = 0.0
    for x, err in zip(inputs, errors, strict=True):
        worst = max(worst, err / (hi - lo))
        levels = err / (hi - lo) * 255.0
        print(
            f"  ONNX Runtime vs PyTorch on {photo_path.name} at {x.shape[3]}x{x.shape[2]}: "
            f"max abs error {err:.2e} ({levels:.2g} of an 8-bit level)"
        )
    if worst >= FP32_TOLERANCE:
        return _fail(
            f"fp32 ONNX differs from PyTorch by {worst * 255:.3f} 8-bit levels (limit 1/255 of "
            "the range); the card is not written",
            status=1,
        )

    fp16_path = None
    if args.fp16:
        fp16_path = output.with_suffix(".fp16.onnx")
        try:
            convert_to_fp16(path, fp16_path)
        except (ValueError, RuntimeError) as exc:
            return _fail(f"fp16 conversion failed: {exc}", status=1)
        checked = []
        try:
            # The parity photo and every validation photo: not one lucky image.
            others = [p for p in _validation_photos(config) if p != photo_path]
            for p in [photo_path, *others]:
                image = photo if p == photo_path else _shrink(read_rgb(p), args.photo_max_side)
                err = fp16_max_error(path, fp16_path, image, (lo, hi), spec.multiple)
                checked.append((err, p.name))
        except (DatasetError, OSError) as exc:
            fp16_path.unlink()
            return _fail(f"fp16 check: {exc}", status=1)
        err16, worst_name = max(checked, key=lambda c: c[0])
        where = (
            photo_path.name if len(checked) == 1 else f"{len(checked)} photos (worst {worst_name})"
        )
        summary = f"fp16 vs fp32 on {where}: max error {err16:.0f} of 255 (8-bit levels)"
        if err16 > args.fp16_tolerance:
            fp16_path.unlink()
            fp16_path = None
            print(f"  {summary}: over the tolerance of {args.fp16_tolerance:g}, not kept")
        else:
            print(f"wrote {fp16_path}")
            print(f"  {summary}")

    from engine.models.complexity import count_macs, count_parameters

    kwargs = structural_kwargs(config["model"].get("kwargs") if config else {})
    macs = _macs_720p(spec.name, kwargs, count_macs)
    card = ModelCard(
        name=output.stem,
        architecture=spec.name,
        version=str(args.version),
        input_range=[lo, hi],
        multiple=spec.multiple,
        onnx=path.name,
        sha256=sha256_of(path),
        onnx_fp16=fp16_path.name if fp16_path else None,
        sha256_fp16=sha256_of(fp16_path) if fp16_path else None,
        params=count_parameters(model),
        macs_720p=macs,
        description=spec.summary,
    )
    if _structure_is_registry(spec.name, kwargs):
        import torch

        weights = output.with_suffix(".pth")
        torch.save(model.state_dict(), weights)
        card.weights = weights.name
    if ckpt is not None:
        card.training = portable_paths(
            _training_section(ckpt, args.source, info["ema"], kwargs),
            Path(config.get("base_dir") or Path.cwd()),
        )
        card.description = f"{spec.summary}; recipe {config.get('name')}, step {ckpt['step']}"
    # Where the card will live: its file names resolve from there while the metrics are
    # measured; it is written once, complete.
    card.path = output.with_suffix(".json")
    int8_path = None
    if args.int8 is not None:
        int8_path = _write_int8(card, args)
        if int8_path is None:
            return 1
    if ckpt is not None and not args.no_metrics and config["data"].get("val"):
        try:
            card.metrics = _measure(card, config, args.val_limit, args.val_per_image, int8_path)
        except (DatasetError, AssetNotFoundError, ValueError) as exc:
            return _fail(f"validation metrics not measured ({exc}); the card is not written", 1)
        m = card.metrics
        line = (
            f"  validation ({m['images']} images, ONNX Runtime fp32): PSNR {m['psnr']:.2f} dB "
            f"(input {m['psnr_input']:.2f}, {m['psnr_gain']:+.2f}"
            f"{plus_minus(m.get('psnr_gain_se'))}), SSIM {m['ssim']:.4f} "
            f"(input {m['ssim_input']:.4f})"
        )
        if m.get("lpips") is not None:
            line += f", LPIPS {m['lpips']:.4f} (input {m['lpips_input']:.4f})"
        print(line)
        if int8_path is not None:
            _keep_int8_if_cheap(card, int8_path, args.int8_max_cost)
    print(f"wrote {card.save(card.path)}")
    return 0


def _write_int8(card: Any, args: argparse.Namespace) -> Path | None:
    """Quantise the card's fp32 file to ``NAME.int8.onnx``; None (after saying why) on failure."""
    from engine.backends.base import BackendUnavailableError
    from engine.backends.onnxruntime_backend import int8_path_for
    from engine.backends.quantize import list_images, quantize_int8, spread

    try:
        photos = spread(list_images(args.int8), args.int8_images)
        if not photos:
            raise ValueError(f"no photos in {args.int8}")
        print(f"calibrating INT8 on {len(photos)} photos of {args.int8} ({args.int8_method})…")
        path = quantize_int8(
            card.onnx_path,
            int8_path_for(card),
            photos,
            (float(card.input_range[0]), float(card.input_range[1])),
            card.multiple,
            max_images=len(photos),
            method=args.int8_method,
        )
    except (ValueError, FileNotFoundError, BackendUnavailableError, RuntimeError) as exc:
        _fail(f"INT8 quantisation failed: {exc}; the card is not written", 1)
        return None
    print(f"wrote {path}")
    return path


def _keep_int8_if_cheap(card: Any, path: Path, max_cost: float | None) -> None:
    """Print what INT8 costs; over ``max_cost`` dB, delete the file and its card entry."""
    from engine.backends.onnxruntime_backend import INT8_MAX_COST_DB
    from training.evaluate import plus_minus

    limit = INT8_MAX_COST_DB if max_cost is None else max_cost
    q = card.metrics["int8"]
    summary = (
        f"  INT8 on the same images: PSNR {q['psnr']:.2f} dB, {q['psnr_cost']:.2f}"
        f"{plus_minus(q.get('psnr_cost_se'))} dB below fp32 (worst image "
        f"{q['psnr_cost_worst']:.2f}), SSIM {q['ssim']:.4f}"
    )
    if q["psnr_cost"] > limit:
        path.unlink()
        del card.metrics["int8"]
        print(f"{summary}: over the limit of {limit:g} dB, not kept")
    else:
        print(summary)


def _macs_720p(name: str, kwargs: dict[str, Any], count_macs: Any) -> int | None:
    """MACs of one 1280×720 frame, counted on the meta device (no computation)."""
    import torch

    from engine.models import create_model

    try:
        with torch.device("meta"):
            meta = create_model(name, **kwargs)
        return int(count_macs(meta, 720, 1280))
    except (RuntimeError, NotImplementedError, TypeError) as exc:  # an op without a meta kernel
        print(f"  MACs not counted: {exc}", file=sys.stderr)
        return None


def portable_paths(value: Any, base: Path) -> Any:
    """``value`` with absolute paths inside ``base`` or beside it made relative to ``base``.

    A card travels with its model: the folders of the machine that trained it mean nothing
    elsewhere, but the repository layout does (``training/configs/…``, ``../shared/data/…``).
    Strings are taken for paths only when absolute; the resolved ``base_dir`` becomes ``.``.
    Other absolute paths (another disk, a temporary folder) are kept as they are.
    """
    if isinstance(value, Mapping):
        return {k: portable_paths(v, base) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable_paths(v, base) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        path, base = Path(os.path.normpath(value)), Path(os.path.normpath(base))
        roots = [(base, Path())]
        if base.parent != base.parent.parent:  # "beside" the filesystem root is everywhere
            roots.append((base.parent, Path("..")))
        for root, prefix in roots:
            if path == root or root in path.parents:
                return (prefix / path.relative_to(root)).as_posix() or "."
    return value


def _training_section(
    ckpt: dict[str, Any], source: str, used_ema: bool, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The card's ``training`` entry: data, recipe, steps and the resolved config."""
    config = ckpt["config"]
    train = config["data"]["train"]
    data = {"type": train["type"], "root": train["root"]}
    if train["type"] == "synthetic":
        data.update(
            blur_weights=train.get("weights"),
            synthesis=train.get("synthesis"),
            degradation=train.get("degradation"),
            crop=train.get("crop"),
        )
        if train.get("pool"):
            data["pool"] = train["pool"]
    source_info = config.get("source") or {}
    # Steps, time and hardware of this run and of the runs it started from (model.init).
    steps, seconds, hardware = int(ckpt["step"]), ckpt.get("train_seconds"), []
    hardware += ckpt.get("hardware") or []
    for init in lineage(ckpt.get("init")):
        steps += int(init.get("steps") or 0)
        if seconds is not None and init.get("train_seconds") is not None:
            seconds += float(init["train_seconds"])
        hardware += [h for h in init.get("hardware") or [] if h not in hardware]
    return {
        "recipe": config.get("name"),
        "recipe_file": source_info.get("file"),
        "variant": config.get("variant"),
        "data": data,
        "validation": config["data"].get("val"),
        "steps": steps,  # with those of the runs it started from
        "run_steps": int(ckpt["step"]),
        "train_seconds": seconds,
        "hardware": hardware,
        "initialised_from": ckpt.get("init"),
        "weights": "ema" if used_ema else "raw",
        "model_kwargs": kwargs,
        "checkpoint": os.path.abspath(source),
        "config": config,
    }


def _measure(
    card: Any,
    config: dict[str, Any],
    limit: int | None,
    per_image: int | None,
    int8_path: Path | None = None,
) -> dict[str, Any]:
    """Validation metrics of the written fp32 ONNX file through the engine's ORT backend.

    A synthetic section is measured with ``per_image`` draws per photo (None: the report
    set's :data:`~training.evaluate.REPORT_PER_IMAGE`), the recipe's own draw first. With
    ``int8_path`` the INT8 copy runs on the same images too: ``metrics["int8"]`` holds its
    sha256, PSNR and SSIM, and its cost against fp32 (see ``EvalReport.cost_against``).
    """
    from engine.backends.select import select_backend
    from training.evaluate import (
        REPORT_PER_IMAGE,
        BackendRestorer,
        Evaluator,
        load_lpips,
        synthetic_description,
        validation_pairs,
    )

    section = dict(config["data"]["val"])
    synthetic = section.get("type", "synthetic") == "synthetic"
    if synthetic:
        section["per_image"] = REPORT_PER_IMAGE if per_image is None else per_image
    if limit is not None:
        section["limit"] = limit
    pairs = validation_pairs(section)
    lpips, why = load_lpips("cpu")
    if why:
        print(f"  {why}", file=sys.stderr)
    evaluator = Evaluator(pairs, lpips, batch_size=1)

    def run(precision: str) -> Any:
        selection = select_backend(card, "onnxruntime", device="cpu", precision=precision)
        try:
            return evaluator.run(BackendRestorer(selection.backend))
        finally:
            selection.backend.close()

    report = run("fp32")
    summary = report.summary()
    root = portable_paths(section["root"], Path(config.get("base_dir") or Path.cwd()))
    what = synthetic_description(section) if synthetic else "paired folder"
    metrics = {**summary, "dataset": f"{what} of {root}", "backend": "onnxruntime fp32 cpu"}
    if int8_path is not None:
        from engine.modelcard import sha256_of

        quantised = run("int8")
        own = quantised.summary()
        metrics["int8"] = {
            "file": int8_path.name,
            "sha256": sha256_of(int8_path),
            **{k: own[k] for k in ("psnr", "ssim", "lpips")},
            **quantised.cost_against(report),
        }
    return metrics

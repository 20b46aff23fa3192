"""Offline processing: `rtdeblur process` and engine.process, on clips made here with PyAV."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.backends.onnxruntime_backend import OnnxRuntimeBackend
from engine.cli_process import ProgressPrinter, format_progress, main
from engine.metrics import psnr
from engine.modelcard import load_card
from engine.process import (
    CANCELLED,
    FAILED,
    OK,
    PARTIAL,
    ProcessError,
    ProcessOptions,
    Progress,
    plan_jobs,
    process_files,
    run_jobs,
)
from engine.video import FileSource
from tests.engine.video.clips import (
    audio_seconds,
    decode_rgb,
    export_test_model,
    make_audio_only,
    make_clip,
    sha256,
)

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="session")
def model_card_path(tmp_path_factory) -> Path:
    """fpn_mobilenet_dsc with random weights, exported once per session (needs torch)."""
    pytest.importorskip("torch")
    return export_test_model(tmp_path_factory.getbasetemp() / "rtdeblur-test-model")


@pytest.fixture(scope="module")
def backend(model_card_path):
    b = OnnxRuntimeBackend.from_card(load_card(model_card_path))
    yield b
    b.close()


def cli(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def deblurred(backend, image):
    return backend.infer(image[None]).copy()[0]


def input_frames(path):
    """The input's frames exactly as the processing saw them (stored orientation)."""
    with FileSource(path, apply_rotation=False) as src:
        return [f.image for f in src]


def hidden_files(folder):
    return [p for p in Path(folder).rglob(".*")]


# -- the happy paths ------------------------------------------------------------------------


def test_every_frame_timestamp_and_the_audio_are_kept(tmp_path, capsys, model_card_path):
    clip = tmp_path / "in" / "clip.mp4"
    clip.parent.mkdir()
    make_clip(clip, frames=20, fps=10, audio=True)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, clip, "-o", out, "--model", model_card_path)
    assert code == 0, err
    assert "backend: ONNX Runtime CPU" in err  # the selection line
    result = out / "clip.mp4"
    assert "ok      20/20" in stdout and str(result) in stdout
    src_frames, src_times = decode_rgb(clip)
    out_frames, out_times = decode_rgb(result)
    assert len(out_frames) == len(src_frames) == 20
    assert out_times == src_times
    assert abs(audio_seconds(result) - audio_seconds(clip)) <= 0.1  # ±1 frame at 10 fps
    with av.open(str(result)) as c:
        assert c.streams.video[0].average_rate == 10
        assert c.streams.audio[0].codec_context.name == "aac"
    assert hidden_files(out) == []


def test_ffv1_output_is_the_backend_output_exactly_and_vfr_is_kept(tmp_path, backend):
    clip = tmp_path / "vfr.mkv"
    pts = [0, 33, 100, 180, 200, 260, 400, 433]
    make_clip(clip, frames=len(pts), pts=pts, time_base=Fraction(1, 1000))
    options = ProcessOptions(codec="ffv1")
    (result,) = process_files([clip], tmp_path / "out", backend, options)
    assert result.status == OK and result.frames == len(pts)
    out_frames, out_times = decode_rgb(result.output)
    assert out_times == [p / 1000 for p in pts]
    for original, got in zip(input_frames(clip), out_frames, strict=True):
        assert np.array_equal(got, deblurred(backend, original))


def test_streams_process_frames_side_by_side_and_keep_every_frame_in_order(
    tmp_path, capsys, backend, model_card_path
):
    from engine.backends.select import select_backend

    clip = tmp_path / "odd.mkv"
    make_clip(clip, frames=7)  # an odd count: the last batch holds one frame
    sel = select_backend(load_card(model_card_path), "onnxruntime", streams=2)
    try:
        assert sel.backend.streams == 2
        (result,) = process_files([clip], tmp_path / "out", sel.backend, ProcessOptions("ffv1"))
    finally:
        sel.backend.close()
    assert result.status == OK and result.frames == 7
    out_frames, out_times = decode_rgb(result.output)
    assert out_times == decode_rgb(clip)[1]
    for original, got in zip(input_frames(clip), out_frames, strict=True):
        assert np.abs(got.astype(int) - deblurred(backend, original)).max() <= 1

    args = (clip, "-o", tmp_path / "cli", "--model", model_card_path, "--codec", "ffv1")
    code, _, err = cli(capsys, *args, "--streams", "2")
    assert code == 0 and "(fp32, cpu, 2 streams)" in err
    code, _, err = cli(capsys, *args, "--streams", "1", "--overwrite")
    assert code == 0 and "(fp32, cpu)" in err
    code, _, err = cli(
        capsys, *args, "--precision", "int8", "--backend", "onnxruntime", "--overwrite"
    )
    assert code == 1 and "has no INT8 file" in err and "rtdeblur quantize" in err
    with pytest.raises(SystemExit):
        main([str(clip), "-o", str(tmp_path / "x"), "--streams", "0"])
    assert "streams must be between 1 and 64" in capsys.readouterr().err


def test_h264_output_matches_the_backend_within_codec_tolerance(tmp_path, backend):
    clip = tmp_path / "c.mp4"
    make_clip(clip, frames=6)
    options = ProcessOptions(crf=12, preset="ultrafast")
    (result,) = process_files([clip], tmp_path / "out", backend, options)
    out_frames, _ = decode_rgb(result.output)
    for original, got in zip(input_frames(clip), out_frames, strict=True):
        assert psnr(got, deblurred(backend, original)) > 32


def test_side_by_side_doubles_the_width(tmp_path, capsys, model_card_path, backend):
    clip = tmp_path / "c.mp4"
    make_clip(clip, frames=4)
    out = tmp_path / "sbs.mkv"
    code, _, err = cli(
        capsys, clip, "-o", out, "--model", model_card_path, "--side-by-side", "--codec", "ffv1"
    )
    assert code == 0, err
    frames, _ = decode_rgb(out)
    assert len(frames) == 4 and frames[0].shape == (48, 128, 3)
    for original, got in zip(input_frames(clip), frames, strict=True):
        assert np.array_equal(got[:, :64], original)
        assert np.array_equal(got[:, 64:], deblurred(backend, original))


def test_rotation_tag_is_kept_and_side_by_side_is_upright(tmp_path, backend):
    clip = tmp_path / "rot.mp4"
    make_clip(clip, frames=3, rotation=90)
    (kept,) = process_files([clip], tmp_path / "a", backend, ProcessOptions(preset="ultrafast"))
    with FileSource(kept.output, apply_rotation=False) as out:
        assert out.rotation == 90 and (out.width, out.height) == (64, 48)
    sbs = ProcessOptions(codec="ffv1", side_by_side=True)
    (upright,) = process_files([clip], tmp_path / "b", backend, sbs)
    with FileSource(upright.output) as out:
        assert out.rotation == 0 and (out.width, out.height) == (96, 64)


def test_png_sequence_and_images(tmp_path, capsys, model_card_path, backend):
    clip = tmp_path / "in" / "c.mp4"
    clip.parent.mkdir()
    make_clip(clip, frames=5)
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in" / "photo.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "in" / "snap.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    code, stdout, err = cli(
        capsys, tmp_path / "in", "-o", out, "--model", model_card_path, "--codec", "png"
    )
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["c", "photo.png", "snap.jpg"]
    assert len(list((out / "c").glob("frame_*.png"))) == 5
    assert (out / "c" / "timestamps.txt").read_text().split()[:2] == ["0.000000", "0.100000"]
    back = cv2.cvtColor(cv2.imread(str(out / "photo.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, deblurred(backend, photo))  # PNG in, PNG out: exact
    assert (out / "snap.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert stdout.strip().endswith("3 ok")


def test_no_audio_glob_and_overwrite(tmp_path, capsys, model_card_path):
    for name in ("a.mp4", "b.mp4"):
        make_clip(tmp_path / name, frames=3, audio=True)
    out = tmp_path / "out"
    args = (str(tmp_path / "*.mp4"), "-o", out, "--model", model_card_path, "--no-audio")
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    for name in ("a.mp4", "b.mp4"):
        with av.open(str(out / name)) as c:
            assert len(c.streams.audio) == 0 and c.streams.video[0].frames == 3
    before = (out / "a.mp4").stat().st_mtime_ns
    code, _, err = cli(capsys, *args)
    assert code == 1 and err.count("already exists (pass --overwrite") == 2
    assert (out / "a.mp4").stat().st_mtime_ns == before
    code, _, err = cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert (out / "a.mp4").stat().st_mtime_ns != before


def test_progress_reports_per_file_and_overall(tmp_path, backend):
    for name, n in (("a.mp4", 4), ("b.mkv", 6)):
        make_clip(tmp_path / name, frames=n)
    reports: list[Progress] = []
    results = process_files(
        [tmp_path / "a.mp4", tmp_path / "b.mkv"], tmp_path / "out", backend, progress=reports.append
    )
    assert [r.status for r in results] == [OK, OK]
    ends = [p for p in reports if p.file_done]
    assert [(p.file_index, p.frames_done, p.frames_total) for p in ends] == [(0, 4, 4), (1, 6, 6)]
    assert reports[-1].overall_done == reports[-1].overall_total == 10
    assert all(p.eta is None or p.eta >= 0 for p in reports)
    assert all(p.fps > 0 for p in reports)
    assert [p.overall_done for p in reports if not p.file_done] == list(range(1, 11))


def test_progress_bar_text():
    p = Progress(0, 2, Path("clip.mp4"), 30, 120, 25.0, 3.6, 30, 240, 8.4)
    line = format_progress(p)
    assert "[1/2] clip.mp4" in line and "30/120" in line and "25.0 fps" in line
    assert "ETA 0:04" in line and "ETA 0:08" in line and "[#####---------------]" in line
    tty, plain = io.StringIO(), io.StringIO()
    ProgressPrinter(tty, interactive=True)(p)
    assert tty.getvalue().startswith("\r") and "\n" not in tty.getvalue()
    printer = ProgressPrinter(plain, interactive=False, interval=60)
    printer(p)
    printer(p)  # throttled
    printer(Progress(0, 2, Path("clip.mp4"), 120, 120, 25.0, 0.0, 120, 240, 4.8, file_done=True))
    assert plain.getvalue().count("\n") == 2 and "\r" not in plain.getvalue()


# -- bad input ------------------------------------------------------------------------------


def _missing(tmp):
    return tmp / "nope.mp4", tmp / "out", "file not found"


def _empty_folder(tmp):
    folder = tmp / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("no media here")
    return folder, tmp / "out", "folder holds no video or image files"


def _corrupt(tmp):
    path = tmp / "corrupt.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path, tmp / "out", "not a media file"


def _truncated(tmp):
    path = tmp / "cut.mp4"
    make_clip(path, frames=10)
    path.write_bytes(path.read_bytes()[:-400])  # MP4 index (moov) is at the end: lost
    return path, tmp / "out", "cut.mp4"


def _audio_only(tmp):
    path = tmp / "song.m4a"
    make_audio_only(path)
    return path, tmp / "out", "has no video stream"


def _zero_frames(tmp):
    path = tmp / "zero.mkv"
    make_clip(path, frames=0, audio=True)
    return path, tmp / "out", "no decodable frames"


def _unwritable(tmp):
    path = tmp / "c.mp4"
    make_clip(path, frames=2)
    blocker = tmp / "blocker"
    blocker.write_text("a file where the output folder should go")
    return path, blocker / "out", "cannot create the output folder"


def _exists(tmp):
    path = tmp / "c.mp4"
    make_clip(path, frames=2)
    (tmp / "out").mkdir()
    (tmp / "out" / "c.mp4").write_bytes(b"precious")
    return path, tmp / "out", "already exists (pass --overwrite"


def _into_itself(tmp):
    path = tmp / "c.mp4"
    make_clip(path, frames=2)
    return path, tmp, "would replace an input file"


BAD_INPUTS = [
    _missing,
    _empty_folder,
    _corrupt,
    _truncated,
    _audio_only,
    _zero_frames,
    _unwritable,
    _exists,
    _into_itself,
]


@pytest.mark.parametrize("setup", BAD_INPUTS, ids=[f.__name__[1:] for f in BAD_INPUTS])
def test_bad_input_gives_one_clear_message_and_writes_nothing(tmp_path, capsys, setup):
    source, out, message = setup(tmp_path)
    before = sha256(source) if source.is_file() else None
    listing = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    # No --model: every one of these must be refused before a model is even needed.
    code, stdout, err = cli(capsys, source, "-o", out)
    assert code == 1
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err + stdout
    assert "failed" in stdout  # the summary names the file and the reason
    if before is not None:
        assert sha256(source) == before
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    created = set(after) - set(listing)
    assert created <= {Path("out")}, created  # at most the (empty) output folder
    if setup is _exists:
        assert (out / "c.mp4").read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "size"),
    [
        ("yuv444.mp4", "libx264", "yuv444p", (64, 48)),
        ("ten_bit.mp4", "libx264", "yuv420p10le", (64, 48)),
        ("rgb.mov", "qtrle", "rgb24", (64, 48)),
        ("odd.mp4", "libx264", "yuv444p", (637, 359)),
    ],
)
def test_odd_pixel_formats_and_sizes_are_processed(tmp_path, backend, name, codec, pix_fmt, size):
    clip = tmp_path / name
    make_clip(clip, frames=3, size=size, codec=codec, pix_fmt=pix_fmt)
    before = sha256(clip)
    options = ProcessOptions(crf=10, preset="ultrafast")
    (result,) = process_files([clip], tmp_path / "out", backend, options)
    assert result.status == OK, result.reason
    assert result.output == tmp_path / "out" / name
    out_frames, _ = decode_rgb(result.output)
    assert len(out_frames) == 3 and out_frames[0].shape == (size[1], size[0], 3)
    for original, got in zip(input_frames(clip), out_frames, strict=True):
        assert psnr(got, deblurred(backend, original)) > 32
    assert sha256(clip) == before


def test_truncated_file_is_processed_as_far_as_it_decodes(tmp_path, capsys, model_card_path):
    clip = tmp_path / "c.mkv"
    make_clip(clip, frames=30, options={"g": "5", "crf": "12"})
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size * 2 // 3])
    code, stdout, err = cli(capsys, cut, "-o", tmp_path / "out", "--model", model_card_path)
    assert code == 0, err
    assert "partial" in stdout and "warning: cut.mkv: partial" in err
    frames, times = decode_rgb(tmp_path / "out" / "cut.mkv")
    decodable = input_frames(cut)
    assert 5 <= len(frames) == len(decodable) < 30
    assert times == [i / 10 for i in range(len(frames))]


def test_a_batch_with_one_broken_file_processes_the_others(tmp_path, capsys, model_card_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    make_clip(folder / "a.mp4", frames=3)
    (folder / "b.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(3000))
    make_clip(folder / "c.mkv", frames=3)
    code, stdout, err = cli(capsys, folder, "-o", tmp_path / "out", "--model", model_card_path)
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp4", "c.mkv"]
    broken = [line for line in stdout.splitlines() if "b.mp4" in line]
    assert len(broken) == 1 and broken[0].startswith("failed") and "not a media file" in broken[0]
    assert "2 ok, 1 failed" in stdout
    assert "error:" in err and "b.mp4" in err and "Traceback" not in err


def test_cancel_leaves_no_file(tmp_path, backend):
    for name in ("a.mp4", "b.mp4"):
        make_clip(tmp_path / name, frames=20)
    cancel = threading.Event()

    def progress(p):
        if p.frames_done == 3:
            cancel.set()

    jobs = plan_jobs([tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "out")
    results = run_jobs(jobs, backend, ProcessOptions(), progress, cancel)
    assert [r.status for r in results] == [CANCELLED, CANCELLED]
    assert all(r.output is None for r in results)
    assert list((tmp_path / "out").iterdir()) == []
    assert not any(t.name.startswith(("decode:", "encode:")) for t in threading.enumerate())


def test_ctrl_c_stops_cleanly_with_no_partial_output(tmp_path, model_card_path):
    clip = tmp_path / "long.mp4"
    make_clip(clip, frames=300, size=(320, 240))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "engine.cli_process", str(clip), "-o", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--model", str(model_card_path)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stderr.readline()  # the backend line: processing starts right after
        assert first.startswith("backend:"), first
        progress = proc.stderr.readline()  # the first progress line: a frame is written
        assert "long.mp4" in progress, progress
        proc.send_signal(signal.SIGINT)
        stdout, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "cancelled" in stdout
    assert list(out.iterdir()) == []


def test_plan_rejects_unknown_codec_and_empty_input(tmp_path):
    with pytest.raises(ProcessError, match="unknown codec"):
        plan_jobs([tmp_path], tmp_path / "out", ProcessOptions(codec="vp9"))
    with pytest.raises(ProcessError, match="no input"):
        plan_jobs([], tmp_path / "out")


def test_single_input_may_name_the_output_file(tmp_path):
    make_clip(tmp_path / "c.mp4", frames=2)
    (job,) = plan_jobs([tmp_path / "c.mp4"], tmp_path / "x" / "result.mkv")
    assert job.error is None and job.output == tmp_path / "x" / "result.mkv"
    (job,) = plan_jobs([tmp_path / "c.mp4"], tmp_path / "y.mp4", ProcessOptions(codec="ffv1"))
    assert "ffv1 video is written to .mkv" in job.error


# -- fuzzing --------------------------------------------------------------------------------

FUZZ_RUNNER = r"""
import json, sys, threading
from pathlib import Path
import numpy as np
from engine.process import ProcessOptions, process_files

class Invert:  # a stand-in backend: the model's identity does not matter here
    name, device, precision = "invert", "cpu", "fp32"
    def infer(self, frames):
        return 255 - frames
    def warmup(self, shape):
        pass
    def close(self):
        pass

files, out_root = [Path(p) for p in sys.argv[2:]], Path(sys.argv[1])
options = ProcessOptions(preset="ultrafast")
for i, path in enumerate(files):
    box = {}
    def work():
        try:
            box["results"] = process_files([path], out_root / str(i), Invert(), options)
        except BaseException as exc:
            box["crash"] = f"{type(exc).__name__}: {exc}"
    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout=20)
    if t.is_alive():
        print(json.dumps({"i": i, "hang": True}), flush=True)
        sys.exit(3)
    if "crash" in box:
        print(json.dumps({"i": i, "crash": box["crash"]}), flush=True)
        continue
    (r,) = box["results"]
    print(json.dumps({"i": i, "status": r.status, "reason": r.reason, "frames": r.frames,
                      "output": str(r.output) if r.output else None}), flush=True)
print("DONE", flush=True)
"""


def _corrupt_variants(clip: Path, folder: Path, count: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    data = np.frombuffer(clip.read_bytes(), dtype=np.uint8)
    paths = []
    for i in range(count):
        damaged = data.copy()
        kind = i % 5
        if kind == 0:  # flip a few random bits anywhere
            at = rng.integers(0, len(damaged), rng.integers(1, 20))
            damaged[at] ^= rng.integers(1, 256, len(at), dtype=np.uint8)
        elif kind == 1:  # truncated anywhere
            damaged = damaged[: rng.integers(1, len(damaged))]
        elif kind == 2:  # header damaged
            at = rng.integers(0, min(600, len(damaged)), rng.integers(1, 12))
            damaged[at] = rng.integers(0, 256, len(at), dtype=np.uint8)
        elif kind == 3:  # a run of bytes zeroed
            start = rng.integers(0, len(damaged) - 1)
            damaged[start : start + rng.integers(16, 600)] = 0
        else:  # many bytes flipped
            at = rng.integers(0, len(damaged), rng.integers(50, 400))
            damaged[at] = rng.integers(0, 256, len(at), dtype=np.uint8)
        path = folder / f"v{i:02d}{clip.suffix}"
        path.write_bytes(damaged.tobytes())
        paths.append(path)
    return paths


def test_fifty_corrupted_variants_end_cleanly(tmp_path):
    sources = tmp_path / "sources"
    sources.mkdir()
    make_clip(sources / "base.mp4", frames=10, audio=True)
    make_clip(sources / "base.mkv", frames=10)
    variants = tmp_path / "variants"
    variants.mkdir()
    files = _corrupt_variants(sources / "base.mp4", variants, 25, seed=4)
    files += _corrupt_variants(sources / "base.mkv", variants, 25, seed=5)
    digests = {p: sha256(p) for p in files}
    runner = tmp_path / "fuzz.py"
    runner.write_text(FUZZ_RUNNER)
    out_root = tmp_path / "out"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(runner), str(out_root), *map(str, files)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    elapsed = time.monotonic() - started
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, (proc.returncode, lines[-1:], proc.stderr[-2000:])
    assert proc.stdout.rstrip().endswith("DONE")
    assert len(lines) == 50
    crashes = [line for line in lines if "crash" in line]
    assert crashes == []
    for line in lines:
        assert line["status"] in (OK, PARTIAL, FAILED), line
        if line["status"] == FAILED:
            assert line["reason"] and "\n" not in line["reason"] and line["output"] is None
        else:
            assert Path(line["output"]).is_file() and line["frames"] > 0
    assert hidden_files(out_root) == []
    assert all(sha256(p) == d for p, d in digests.items())  # inputs untouched
    assert elapsed < 120


def test_the_plugin_registers_the_process_command(tmp_path):
    import argparse

    from engine import cli_process

    parser = argparse.ArgumentParser(prog="rtdeblur")
    cli_process.register(parser.add_subparsers())
    args = parser.parse_args(["process", "a.mp4", "b", "-o", "out", "--codec", "ffv1"])
    assert args.func is cli_process.run and args.inputs == ["a.mp4", "b"]
    assert (args.codec, args.crf, args.overwrite, args.no_audio) == ("ffv1", None, False, False)
    with pytest.raises(SystemExit):
        parser.parse_args(["process", "a.mp4", "-o", "out", "--crf", "60"])


def test_a_bad_model_is_one_clear_message(tmp_path, capsys):
    make_clip(tmp_path / "c.mp4", frames=2)
    code, _, err = cli(capsys, tmp_path / "c.mp4", "-o", tmp_path / "out", "--model", "nope")
    assert code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "no model named 'nope'" in errors[0]
    assert not (tmp_path / "out" / "c.mp4").exists()

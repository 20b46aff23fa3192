import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.metrics import psnr
from engine.video import FileSource, ImageFolderSource, SourceError, TimedFrame, probe
from tests.engine.video.clips import make_audio_only, make_clip

SHARED_VIDEO = Path(__file__).parents[4] / "shared" / "data" / "video"


def _check_frame(frame: TimedFrame, height: int, width: int) -> None:
    img = frame.image
    assert img.dtype == np.uint8 and img.shape == (height, width, 3)
    assert img.flags.c_contiguous


def _assert_same_picture(got: np.ndarray, original: np.ndarray) -> None:
    assert psnr(got, original) > 30
    # RGB order: where the source is red, so is the frame.
    red = np.all(original == (250, 30, 30), axis=-1)
    inner = (
        red & np.roll(red, 2, 0) & np.roll(red, -2, 0) & np.roll(red, 2, 1) & np.roll(red, -2, 1)
    )
    if inner.any():
        assert got[inner][:, 0].mean() > 200 and got[inner][:, 2].mean() < 80


def test_file_source_yields_every_frame_with_exact_timestamps(tmp_path):
    path = tmp_path / "c.mp4"
    made = make_clip(path, frames=12, fps=10)
    with FileSource(path) as src:
        assert (src.width, src.height, src.fps) == (64, 48, 10.0)
        frames = list(src)
        assert src.complete and src.problems == []
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    assert [f.timestamp for f in frames] == [Fraction(i, 10) for i in range(12)]
    assert [f.time for f in frames] == [i / 10 for i in range(12)]
    for f, original in zip(frames, made, strict=True):
        _check_frame(f, 48, 64)
        _assert_same_picture(f.image, original)


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    path = tmp_path / "vfr.mkv"
    pts = [0, 40, 140, 150, 400, 433, 1000]
    make_clip(path, frames=len(pts), pts=pts, time_base=Fraction(1, 1000))
    with FileSource(path) as src:
        got = [f.timestamp for f in src]
    assert got == [Fraction(p, 1000) for p in pts]


def test_seek_lands_on_the_exact_frame(tmp_path):
    path = tmp_path / "c.mp4"
    make_clip(path, frames=30, fps=10, options={"g": "10"})
    with FileSource(path) as src:
        src.seek(1.7)
        first = src.read()
        assert first.timestamp == Fraction(17, 10) and first.index == 17
        assert len(list(src)) == 12
        src.seek(0.0)
        assert src.read().index == 0
        src.seek(99.0)
        assert src.read() is None


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_from_the_display_matrix_is_applied(tmp_path, rotation):
    path = tmp_path / "rot.mp4"
    made = make_clip(path, frames=3, size=(64, 48), pix_fmt="yuv444p", rotation=rotation)
    with FileSource(path) as src:
        assert src.rotation == rotation
        frames = list(src)
    expected = np.rot90(made[0], rotation // 90)  # counter-clockwise, as players show it
    assert frames[0].image.shape == expected.shape
    assert (src.width, src.height) == (expected.shape[1], expected.shape[0])
    _assert_same_picture(frames[0].image, expected)
    with FileSource(path, apply_rotation=False) as raw:
        assert raw.read().image.shape == (48, 64, 3) and raw.rotation == rotation


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt", "size"),
    [
        ("yuv444.mp4", "libx264", "yuv444p", (64, 48)),
        ("ten_bit.mp4", "libx264", "yuv420p10le", (64, 48)),
        ("rgb.mov", "qtrle", "rgb24", (64, 48)),
        ("odd.mp4", "libx264", "yuv444p", (637, 359)),
        ("odd420.mkv", "ffv1", "yuv420p", (637, 359)),
    ],
)
def test_any_pixel_format_and_odd_sizes_become_rgb(tmp_path, name, codec, pix_fmt, size):
    path = tmp_path / name
    made = make_clip(path, frames=3, size=size, codec=codec, pix_fmt=pix_fmt)
    with FileSource(path) as src:
        assert src.info.pix_fmt == pix_fmt
        frames = list(src)
    assert len(frames) == 3
    for f, original in zip(frames, made, strict=True):
        _check_frame(f, size[1], size[0])
        if pix_fmt == "rgb24":
            assert np.array_equal(f.image, original)
        else:
            _assert_same_picture(f.image, original)


def test_full_range_video_is_not_washed_out(tmp_path):
    path = tmp_path / "full.mp4"
    made = make_clip(path, frames=2, color_range=2, pix_fmt="yuvj420p")
    with FileSource(path) as src:
        assert src.color.range == 2
        image = src.read().image
    _assert_same_picture(image, made[0])
    assert abs(float(image.mean()) - float(made[0].mean())) < 2


def test_real_clip_from_the_shared_data():
    path = SHARED_VIDEO / "tree.mp4"
    if not path.is_file():
        pytest.skip("shared clips not present")
    with FileSource(path) as src:
        assert sum(1 for _ in src) == 68 and src.complete


def test_decoding_runs_ahead_in_a_bounded_queue(tmp_path):
    path = tmp_path / "c.mp4"
    make_clip(path, frames=40)
    src = FileSource(path, queue_size=3)
    time.sleep(0.3)  # the thread decodes ahead, then blocks on the full queue
    assert src._queue.qsize() == 3
    assert src._thread.is_alive()
    assert src.read().index == 0
    src.close()  # must not hang while the producer is blocked
    assert not any(t.name.startswith("decode:") for t in threading.enumerate())


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"\x00garbage" * 500), "not a media file"),
        (lambda p: make_audio_only(p), "no video stream"),
    ],
    ids=["missing", "empty", "garbage", "audio-only"],
)
def test_unreadable_files_raise_one_clear_error(tmp_path, setup, message):
    path = tmp_path / "bad.mp4"
    setup(path)
    with pytest.raises(SourceError, match=message) as info:
        FileSource(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(SourceError, match=message):
        probe(path)


def test_a_video_stream_without_frames_is_an_error(tmp_path):
    path = tmp_path / "zero.mkv"
    make_clip(path, frames=0, audio=True)
    with pytest.raises(SourceError, match="no decodable frames"):
        FileSource(path)


def test_a_file_cut_before_any_video_data_is_an_error(tmp_path):
    path = tmp_path / "c.mkv"
    make_clip(path, frames=3)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SourceError, match=str(path)):
        FileSource(path)


def test_a_truncated_file_yields_what_decodes_and_says_so(tmp_path):
    path = tmp_path / "c.mkv"
    make_clip(path, frames=30, size=(64, 48), options={"g": "5"})
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with FileSource(cut) as src:
        frames = list(src)
    assert 5 <= len(frames) < 30
    assert [f.index for f in frames] == list(range(len(frames)))


def test_image_folder_source_sorts_naturally_and_times_by_fps(tmp_path):
    rng = np.random.default_rng(0)
    images = {}
    for n in (10, 2, 1):
        img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
        images[n] = img
        cv2.imwrite(str(tmp_path / f"frame{n}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not an image")
    src = ImageFolderSource(tmp_path, fps=4)
    assert len(src) == 3 and (src.width, src.height) == (30, 20)
    frames = list(src)
    assert [f.pts for f in frames] == [0, 1, 2]
    assert [f.time for f in frames] == [0.0, 0.25, 0.5]
    for f, n in zip(frames, (1, 2, 10), strict=True):
        assert np.array_equal(f.image, images[n]) and f.image.flags.c_contiguous


def test_image_folder_source_errors(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(tmp_path)
    with pytest.raises(SourceError, match="folder not found"):
        ImageFolderSource(tmp_path / "nope")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((12, 10, 3), np.uint8))
    src = ImageFolderSource(tmp_path)
    src.read()
    with pytest.raises(SourceError, match="first image is 10x10"):
        src.read()

import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from engine.metrics import psnr
from engine.video import (
    ColorInfo,
    FileSource,
    ImageSequenceSink,
    SinkError,
    VideoSink,
    codec_available,
    write_image,
)
from engine.video.sink import choose_pix_fmt
from tests.engine.video.clips import audio_seconds, decode_rgb, make_clip, pattern


def _frames(n, h, w, seed=0):
    return list(np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8))


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("size", [(64, 48), (637, 359)])
def test_ffv1_round_trips_rgb_exactly(tmp_path, size):
    w, h = size
    frames = _frames(3, h, w)
    out = tmp_path / "x.mkv"
    with VideoSink(out, w, h, codec="ffv1", time_base=Fraction(1, 25)) as sink:
        for i, f in enumerate(frames):
            sink.write(f, i)
    got, times = decode_rgb(out)
    assert len(got) == 3 and all(np.array_equal(a, b) for a, b in zip(got, frames, strict=True))
    assert times == [0, 0.04, 0.08]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("codec", ["h264", "h265"])
@pytest.mark.parametrize("size", [(64, 48), (63, 47)])
def test_h26x_encodes_within_codec_tolerance(tmp_path, codec, size):
    if not codec_available(codec):
        pytest.skip(f"no {codec} encoder in this PyAV build")
    w, h = size
    frames = [pattern(h, w, i) for i in range(4)]
    out = tmp_path / "x.mp4"
    with VideoSink(out, w, h, codec=codec, crf=10, preset="ultrafast", frame_rate=10) as sink:
        for f in frames:
            sink.write(f)
    assert sink.pix_fmt == ("yuv420p" if w % 2 == 0 else "yuv444p")
    got, times = decode_rgb(out)
    assert len(got) == 4 and got[0].shape == (h, w, 3)
    assert times == [0, 0.1, 0.2, 0.3]
    assert min(psnr(a, b) for a, b in zip(got, frames, strict=True)) > 32
    if codec == "h265":
        with av.open(str(out)) as c:
            assert c.streams.video[0].codec_context.codec_tag == "hvc1"


def test_pixel_format_follows_the_source_and_the_size():
    assert choose_pix_fmt("h264", 64, 48) == "yuv420p"
    assert choose_pix_fmt("h264", 64, 48, "yuv444p") == "yuv444p"
    assert choose_pix_fmt("h264", 64, 48, "yuv422p10le") == "yuv422p"
    assert choose_pix_fmt("h264", 63, 48, "yuv422p") == "yuv444p"
    assert choose_pix_fmt("h264", 64, 47) == "yuv444p"
    assert choose_pix_fmt("h264", 64, 48, "rgb24") == "yuv444p"
    assert choose_pix_fmt("ffv1", 63, 47, "yuv420p") == "bgr0"


def test_output_is_a_temp_file_in_the_destination_until_close(tmp_path):
    out = tmp_path / "x.mkv"
    sink = VideoSink(out, 32, 32, codec="ffv1")
    for f in _frames(2, 32, 32):
        sink.write(f)
    temps = _leftovers(tmp_path)
    assert not out.exists() and len(temps) == 1 and temps[0].endswith(".mkv")
    assert sink.close() == out
    assert out.exists() and _leftovers(tmp_path) == []


def test_abort_deletes_the_temp_file(tmp_path):
    out = tmp_path / "x.mp4"
    with pytest.raises(RuntimeError), VideoSink(out, 32, 32) as sink:
        sink.write(_frames(1, 32, 32)[0])
        raise RuntimeError("stop")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_output_and_bad_arguments_are_refused(tmp_path):
    out = tmp_path / "x.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(SinkError, match="already exists"):
        VideoSink(out, 32, 32)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(SinkError, match="mkv"):
        VideoSink(tmp_path / "y.mp4", 32, 32, codec="ffv1")
    with pytest.raises(SinkError, match="does not exist"):
        VideoSink(tmp_path / "nope" / "y.mp4", 32, 32)
    with pytest.raises(SinkError, match="crf"):
        VideoSink(tmp_path / "y.mp4", 32, 32, crf=99)
    with VideoSink(out, 32, 32, overwrite=True) as sink:
        sink.write(_frames(1, 32, 32)[0])
    assert out.read_bytes() != b"keep me"
    with pytest.raises(SinkError, match="uint8"):
        VideoSink(tmp_path / "z.mp4", 32, 32).write(np.zeros((16, 32, 3), np.uint8))


def test_non_increasing_timestamps_are_repaired(tmp_path):
    out = tmp_path / "x.mkv"
    with VideoSink(out, 32, 32, codec="ffv1", time_base=Fraction(1, 1000)) as sink:
        for pts, f in zip([0, 100, 100, 50, 300], _frames(5, 32, 32), strict=True):
            sink.write(f, pts)
    _, times = decode_rgb(out)
    assert times == [0.0, 0.1, 0.101, 0.102, 0.3]
    assert any("repaired" in n for n in sink.notes)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_audio_is_copied_without_reencoding(tmp_path, suffix):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=10, fps=10, audio=True)
    out = tmp_path / f"out{suffix}"
    with FileSource(src) as source:
        sink = VideoSink(
            out,
            64,
            48,
            time_base=source.time_base,
            frame_rate=10,
            audio_from=src,
            preset="ultrafast",
        )
        for f in source:
            sink.write(f.image, f.pts)
        sink.close()
    assert sink.audio_streams == 1 and not any("re-encoded" in n for n in sink.notes)
    with av.open(str(src)) as a, av.open(str(out)) as b:
        pa = [bytes(p) for p in a.demux(audio=0) if p.size]
        pb = [bytes(p) for p in b.demux(audio=0) if p.size]
        assert b.streams.audio[0].codec_context.name == "aac"
    assert pa == pb  # the very same AAC packets
    assert abs(audio_seconds(out) - audio_seconds(src)) <= 0.1


def test_audio_the_container_cannot_hold_is_reencoded(tmp_path):
    src = tmp_path / "in.mov"  # MOV holds µ-law PCM; MP4 does not
    make_clip(src, frames=10, fps=10, audio=True, audio_codec="pcm_mulaw")
    out = tmp_path / "out.mp4"
    sink = VideoSink(out, 64, 48, frame_rate=10, audio_from=src, preset="ultrafast")
    with FileSource(src) as source, sink:
        for f in source:
            sink.write(f.image, round(f.time * 10))
    assert any("re-encoded pcm_mulaw → aac" in n for n in sink.notes)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    assert abs(audio_seconds(out) - audio_seconds(src)) <= 0.1


def test_rotation_and_colour_tags_are_written(tmp_path):
    out = tmp_path / "x.mp4"
    color = ColorInfo(range=2, space=1, primaries=1, trc=1)
    image = pattern(48, 64, 0)
    with VideoSink(out, 64, 48, rotation=270, color=color, crf=0, preset="ultrafast") as sink:
        sink.write(image)
    with av.open(str(out)) as c:
        frame = next(c.decode(video=0))
        assert frame.rotation == -90  # FFmpeg reports 270° counter-clockwise as -90
        assert ColorInfo.of(frame) == color
        # Converted with the same matrix and range it is tagged with: colours survive.
        assert psnr(frame.to_ndarray(format="rgb24", src_color_range=2), image) > 35
    with FileSource(out) as back:
        assert back.rotation == 270 and back.read().image.shape == (64, 48, 3)


def test_png_sequence_is_published_whole(tmp_path):
    folder = tmp_path / "frames"
    frames = _frames(3, 20, 30)
    sink = ImageSequenceSink(folder, 30, 20, time_base=Fraction(1, 1000))
    for pts, f in zip([0, 40, 100], frames, strict=True):
        sink.write(f, pts)
    assert not folder.exists()
    sink.close()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["frame_000001.png", "frame_000002.png", "frame_000003.png", "timestamps.txt"]
    for name, f in zip(names, frames, strict=False):
        back = cv2.cvtColor(cv2.imread(str(folder / name)), cv2.COLOR_BGR2RGB)
        assert np.array_equal(back, f)
    assert (folder / "timestamps.txt").read_text().split() == ["0.000000", "0.040000", "0.100000"]
    aborted = ImageSequenceSink(tmp_path / "other", 30, 20)
    aborted.write(frames[0])
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_write_image_is_atomic_and_keeps_the_format(tmp_path):
    image = _frames(1, 20, 30)[0]
    png = write_image(tmp_path / "a.png", image)
    assert np.array_equal(cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB), image)
    jpg = write_image(tmp_path / "a.jpg", pattern(20, 30, 0))
    assert jpg.read_bytes()[:2] == b"\xff\xd8"
    with pytest.raises(SinkError, match="already exists"):
        write_image(png, image)
    with pytest.raises(SinkError, match="cannot write"):
        write_image(tmp_path / "a.xyz", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png"]


def test_write_failure_surfaces_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "x.mkv"
    sink = VideoSink(out, 32, 32, codec="ffv1")

    def broken(item):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sink, "_handle", broken)
    with pytest.raises(SinkError, match="No space left on device"):
        for f in _frames(50, 32, 32):
            sink.write(f)
    with pytest.raises(SinkError):
        sink.close()
    assert list(tmp_path.iterdir()) == []
    assert not any(t.name.startswith("encode:") for t in threading.enumerate())

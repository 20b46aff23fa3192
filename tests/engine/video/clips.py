"""Test clips made with PyAV inside the tests, and the small model the processing tests run."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def pattern(height: int, width: int, index: int) -> np.ndarray:
    """A smooth RGB test frame with a red square that moves with ``index``."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack(
        [
            np.minimum(x * 200 // max(width - 1, 1) + index * 3, 255),
            y * 255 // max(height - 1, 1),
            (x + y) * 255 // max(width + height - 2, 1),
        ],
        axis=-1,
    ).astype(np.uint8)
    side = max(2, min(height, width) // 4)
    # Even steps keep the square on the 4:2:0 chroma grid, so only coding error remains.
    top = (index * 2) % max(1, height - side) // 2 * 2
    left = (index * 4) % max(1, width - side) // 2 * 2
    image[top : top + side, left : left + side] = (250, 30, 30)
    return image


def make_clip(
    path: str | Path,
    *,
    frames: int = 10,
    size: tuple[int, int] = (64, 48),
    fps: int = 10,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = False,
    audio_codec: str = "aac",
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    color_range: int = 0,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> list[np.ndarray]:
    """Write a clip and return the RGB frames that went in.

    Args:
        path: output file (suffix picks the container).
        frames: number of video frames.
        size: (width, height).
        fps: nominal frame rate (and the time base when ``pts`` is not given).
        codec: FFmpeg encoder.
        pix_fmt: encoder pixel format.
        audio: add a mono 48 kHz sine track as long as the video.
        audio_codec: its encoder.
        pts: explicit timestamps in ``time_base`` units (variable frame rate).
        time_base: the video time base (default ``1/fps``).
        rotation: display rotation to tag (counter-clockwise degrees).
        color_range: 0 unspecified, 1 limited, 2 full.
        options: encoder options.
        container_options: muxer options (e.g. ``movflags=faststart``).
    """
    width, height = size
    time_base = time_base or Fraction(1, fps)
    pts = pts if pts is not None else [round(i / fps / time_base) for i in range(frames)]
    container = av.open(str(path), "w", options=container_options or {})
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.codec_context.time_base = time_base
    stream.time_base = time_base
    if color_range:
        stream.codec_context.color_range = color_range
    if options is None and codec == "libx264":
        options = {"crf": "12"}  # close enough to the input for PSNR checks on tiny frames
    if options:
        stream.options = options
    if rotation:
        stream.set_display_rotation(rotation)
    audio_stream = None
    if audio:
        audio_stream = container.add_stream(audio_codec, rate=48000)
        audio_stream.layout = "mono"
    images = []
    for i in range(frames):
        image = pattern(height, width, i)
        images.append(image)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if pix_fmt != "rgb24":
            frame = frame.reformat(format=pix_fmt, dst_color_range=color_range)
        frame.pts = pts[i]
        frame.time_base = time_base
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))
    if audio_stream is not None:
        seconds = float((pts[-1] * time_base) + Fraction(1, fps)) if frames else 1.0
        _write_sine(container, audio_stream, seconds)
    container.close()
    return images


def _write_sine(container, stream, seconds: float, rate: int = 48000) -> None:
    total = round(seconds * rate)
    # PyAV converts these float samples to the encoder's own sample format.
    samples = (0.25 * np.sin(np.arange(total) * 2 * np.pi * 440 / rate)).astype(np.float32)
    for start in range(0, total, 1024):
        chunk = samples[start : start + 1024][None]
        frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def make_audio_only(path: str | Path, seconds: float = 1.0) -> None:
    """An AAC file with no video stream."""
    container = av.open(str(path), "w")
    stream = container.add_stream("aac", rate=48000)
    stream.layout = "mono"
    _write_sine(container, stream, seconds)
    container.close()


def decode_rgb(path: str | Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame of a file as RGB (as stored, no rotation) and its time in seconds."""
    images, times = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            images.append(np.ascontiguousarray(frame.to_ndarray(format="rgb24")))
            times.append(float(frame.pts * frame.time_base))
    return images, times


def audio_seconds(path: str | Path) -> float:
    """Duration of the first audio stream, from its decoded samples."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        return sum(frame.samples for frame in container.decode(stream)) / rate


def sha256(path: str | Path) -> str:
    """Hex digest of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export_test_model(folder: Path) -> Path:
    """Export fpn_mobilenet_dsc with random weights once into ``folder``; its card's path.

    Reused when already there, so fixtures in several test modules share one export.
    """
    card = folder / "fpn_mobilenet_dsc.json"
    if not card.is_file():
        from engine.models import create_model
        from engine.models.export import export_with_card

        folder.mkdir(parents=True, exist_ok=True)
        export_with_card(
            create_model("fpn_mobilenet_dsc"),
            "fpn_mobilenet_dsc",
            folder / "fpn_mobilenet_dsc.onnx",
        )
    return card

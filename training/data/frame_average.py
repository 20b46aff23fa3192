"""Blur from high-frame-rate clips: consecutive frames averaged in linear light (GoPro protocol).

Nah et al. made GoPro by averaging 7 to 13 consecutive 240 fps frames; the middle frame is the
sharp target. Averaging sRGB values instead of light darkens bright moving edges, so every
average here is taken in linear light.

A clip is a folder of frame images (sorted by name) or a video file (decoded with PyAV).
Frame folders are the better choice for training: a video is decoded from its start for every
window.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.data.augment import (
    crop_size,
    dihedral,
    item_rng,
    random_crop_origin,
    random_dihedral_code,
    reflect_crop,
)
from training.data.colour import linear_to_srgb_uint8, srgb_uint8_to_linear
from training.data.paired import IMAGE_EXTENSIONS, DatasetError, image_to_tensor, read_rgb

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def average_window(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One blurred frame from a window of frames, and the window's middle frame as its target.

    Args:
        frames: uint8 RGB frames of one size; for an even count the later of the two middle
            frames is the target.

    Returns:
        ``(blur, sharp)`` uint8 RGB.

    Shape:
        - frames: ``n`` × :math:`(H, W, 3)`; outputs :math:`(H, W, 3)`
    """
    if not frames:
        raise ValueError("cannot average an empty window")
    acc = np.zeros(frames[0].shape, np.float32)
    for i, frame in enumerate(frames):
        if frame.shape != frames[0].shape:
            raise ValueError(f"frame {i} is {frame.shape}, frame 0 is {frames[0].shape}")
        acc += srgb_uint8_to_linear(frame)
    acc *= np.float32(1.0 / len(frames))
    return linear_to_srgb_uint8(acc), frames[len(frames) // 2].copy()


def average_frames(
    frames: Iterable[np.ndarray], n: int, *, stride: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blurred/sharp pairs from consecutive windows of ``n`` frames of a high-frame-rate clip.

    Args:
        frames: uint8 RGB frames, in order.
        n: frames per window (odd, so that there is a true middle frame).
        stride: frames between window starts; ``n`` (no overlap) when None.

    Yields:
        ``(blur, sharp)`` uint8 RGB per complete window; a short tail is dropped.
    """
    if n < 1 or n % 2 == 0:
        raise ValueError(f"n must be odd and ≥ 1, got {n}")
    stride = n if stride is None else int(stride)
    if stride < 1:
        raise ValueError(f"stride must be ≥ 1, got {stride}")
    window: list[np.ndarray] = []
    skip = 0
    for frame in frames:
        if skip:
            skip -= 1
            continue
        window.append(frame)
        if len(window) == n:
            yield average_window(window)
            window = window[stride:] if stride < n else []
            skip = max(stride - n, 0)


def _decode_video(path: Path, first: int = 0, count: int | None = None) -> list[np.ndarray]:
    import av

    try:
        with av.open(str(path)) as container:
            frames = []
            for i, frame in enumerate(container.decode(video=0)):
                if i >= first:
                    frames.append(frame.to_ndarray(format="rgb24"))
                if count is not None and len(frames) == count:
                    break
    except (av.error.FFmpegError, IndexError) as e:  # IndexError: no video stream
        raise DatasetError(f"cannot decode video {path}: {e}") from e
    return frames


def _count_video_frames(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            # Counting packets needs no decoding; one packet holds one frame for video codecs.
            return sum(1 for p in container.demux(stream) if p.size)
    except (av.error.FFmpegError, IndexError) as e:
        raise DatasetError(f"cannot read video {path}: {e}") from e


class FrameAverageDataset:
    """Blurred/sharp pairs from a folder of high-frame-rate clips, made on the fly.

    Each clip contributes windows starting every ``stride`` frames that fit the longest
    average; item ``i`` averages an odd number of frames drawn from ``n_frames`` centred in its
    window (the GoPro protocol), then crops (reflection-padded when needed) and flips/rotates
    both images alike. Items are ``{"blur": tensor, "sharp": tensor}``, float32 ``3 × H × W``
    in [0, 1], and depend only on (seed, epoch, index).

    Args:
        root: folder whose sub-folders of frame images and video files are the clips.
        n_frames: frames per average, an odd int or an inclusive range ``(low, high)``.
        crop: crop side or ``(height, width)``; None keeps whole frames (no flips/rotations).
        seed: base seed.
        stride: frames between window starts; the longest window when None.
        flips: random flips.
        rotations: random 90° rotations.
        epoch: the epoch the first iteration sees.

    Raises:
        DatasetError: no clip under ``root`` holds enough frames.
    """

    def __init__(
        self,
        root: str | Path,
        n_frames: int | Sequence[int] = (7, 13),
        crop: int | Sequence[int] | None = 256,
        seed: int = 0,
        *,
        stride: int | None = None,
        flips: bool = True,
        rotations: bool = True,
        epoch: int = 0,
    ) -> None:
        self.root = Path(root)
        low, high = (n_frames, n_frames) if np.isscalar(n_frames) else n_frames  # type: ignore[misc]
        self.n_frames = (int(low), int(high))
        odd = [n for n in range(self.n_frames[0], self.n_frames[1] + 1) if n % 2 == 1 and n > 0]
        if not odd:
            raise ValueError(f"n_frames must include an odd count ≥ 1, got {n_frames!r}")
        self._counts = odd
        self.crop = None if crop is None else crop_size(crop)
        self.seed, self.epoch = int(seed), int(epoch)
        self.flips, self.rotations = flips, rotations
        longest = odd[-1]
        self.stride = longest if stride is None else int(stride)
        if not self.root.is_dir():
            raise DatasetError(f"not a folder: {self.root}")
        self.clips: list[Path | list[Path]] = []
        self.windows: list[tuple[int, int]] = []  # (clip index, first frame of the window)
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir():
                files = sorted(p for p in entry.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
                clip: Path | list[Path] = files
                length = len(files)
            elif entry.suffix.lower() in VIDEO_EXTENSIONS:
                clip, length = entry, _count_video_frames(entry)
            else:
                continue
            if length < longest:
                continue
            for first in range(0, length - longest + 1, self.stride):
                self.windows.append((len(self.clips), first))
            self.clips.append(clip)
        if not self.windows:
            raise DatasetError(
                f"no clip with ≥ {longest} frames under {self.root}: expected "
                f"'{self.root}/<clip>/*' frame images or '{self.root}/*' video files "
                f"({'/'.join(e[1:] for e in VIDEO_EXTENSIONS)})"
            )

    def __len__(self) -> int:
        return len(self.windows)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch of the next iteration (call before creating its iterator)."""
        self.epoch = int(epoch)

    def _frames(self, clip: Path | list[Path], first: int, count: int) -> list[np.ndarray]:
        if isinstance(clip, list):
            return [read_rgb(p) for p in clip[first : first + count]]
        frames = _decode_video(clip, first, count)
        if len(frames) < count:
            raise DatasetError(f"{clip}: decoded {len(frames)} of {count} frames from {first}")
        return frames

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Item ``index`` as uint8 RGB ``(blur, sharp)``, cropped and augmented."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} windows")
        rng = item_rng(self.seed, self.epoch, index)
        n = self._counts[int(rng.integers(len(self._counts)))]
        clip_index, first = self.windows[index]
        frames = self._frames(self.clips[clip_index], first + (self._counts[-1] - n) // 2, n)
        if self.crop is not None:
            top, left = random_crop_origin(rng, *frames[0].shape[:2], self.crop)
            frames = [reflect_crop(f, top, left, *self.crop) for f in frames]
        blur, sharp = average_window(frames)
        if self.crop is None:
            return blur, sharp
        code = random_dihedral_code(
            rng, square=self.crop[0] == self.crop[1], flips=self.flips, rotations=self.rotations
        )
        return dihedral(blur, code), dihedral(sharp, code)

    def __getitem__(self, index: int) -> dict[str, Any]:
        blur, sharp = self.sample(index)
        return {"blur": image_to_tensor(blur), "sharp": image_to_tensor(sharp)}

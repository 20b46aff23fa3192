"""uint8 RGB frames ↔ the float tensors a network takes, with buffers reused between frames."""

from __future__ import annotations

import cv2
import numpy as np


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """H and W rounded up to ``multiple``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


class FrameConverter:
    """Converts uint8 NHWC frames to the model's float NCHW input and back, reusing buffers.

    Pre-processing: reflect-pad bottom/right to the model's multiple only when needed, scale
    0…255 to the model's value range, NHWC → NCHW. Post-processing: NCHW → NHWC, map back to
    0…255, clamp, round half to even, crop, uint8. Buffers are allocated once per input shape
    and reused for every later batch of that shape. Tensors are converted one colour plane at a
    time by OpenCV (in: a 256-entry table of the tensor's dtype; out: scale and offset in one
    pass, then uint8 with saturation and rounding half to even), several times faster than
    NumPy's strided passes (float16 most of all).

    Args:
        input_range: the model's value range ``(low, high)``.
        multiple: H and W are padded to a multiple of this.
        dtype: float dtype of the model input (float32, or float16 for fp16 graphs).

    Shape:
        - frames: :math:`(N, H, W, 3)` uint8
        - model input: :math:`(N, 3, H_p, W_p)` with :math:`H_p, W_p` multiples of ``multiple``
    """

    def __init__(
        self, input_range: tuple[float, float], multiple: int, dtype: type = np.float32
    ) -> None:
        lo, hi = (float(v) for v in input_range)
        if not hi > lo:
            raise ValueError(f"input_range must be (low, high) with low < high, got {input_range}")
        self.low, self.high = lo, hi
        self.multiple = int(multiple)
        self.dtype = np.dtype(dtype)
        self._scale = (hi - lo) / 255.0
        # The value of every uint8 level, rounded once from float64 (255 maps to hi exactly).
        self._lut = (np.arange(256) * self._scale + lo).astype(self.dtype)[None]
        self._shape: tuple[int, ...] | None = None
        self._padded: np.ndarray | None = None  # uint8 NHWC, padded
        self._input: np.ndarray | None = None  # float NCHW
        self._output: np.ndarray | None = None  # uint8 NHWC, cropped

    def _allocate(self, shape: tuple[int, ...]) -> None:
        n, h, w, _ = shape
        hp, wp = padded_size(h, w, self.multiple)
        self._padded = np.empty((n, hp, wp, 3), np.uint8) if (hp, wp) != (h, w) else None
        self._input = np.empty((n, 3, hp, wp), self.dtype)
        self._output = np.empty((n, h, w, 3), np.uint8)
        self._in_planes = [np.empty((hp, wp), np.uint8) for _ in range(3)]
        self._out_planes = [np.empty((h, w), np.uint8) for _ in range(3)]
        self._shape = shape

    def to_input(self, frames: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The model input for ``frames``.

        Args:
            frames: uint8 RGB frames.
            out: a C-contiguous array of the input's shape and dtype to write into (e.g.
                page-locked memory for a GPU copy); by default the converter's own buffer,
                valid until the next call.
        """
        if frames.shape != self._shape:
            self._allocate(frames.shape)
        if out is None:
            out = self._input
        elif out.shape != self._input.shape or out.dtype != self.dtype:
            raise ValueError(
                f"out must be a {self.dtype} array of shape {self._input.shape}, "
                f"got {out.dtype} {out.shape}"
            )
        elif not out.flags.c_contiguous:
            raise ValueError("out must be C-contiguous")
        src = frames
        if self._padded is not None:
            _reflect_pad_into(frames, self._padded)
            src = self._padded
        planes = self._in_planes
        for frame, tensor in zip(src, out, strict=True):
            cv2.split(np.ascontiguousarray(frame), planes)
            for plane, channel in zip(planes, tensor, strict=True):
                cv2.LUT(plane, self._lut, channel)  # written into the input tensor
        return out

    def to_frames(self, output: np.ndarray) -> np.ndarray:
        """uint8 frames from the model output (a reused buffer: valid until the next call)."""
        _, h, w, _ = self._shape
        if output.dtype not in (np.float32, np.float16):
            output = output.astype(np.float32)
        alpha, gamma = 1.0 / self._scale, -self.low / self._scale
        planes = self._out_planes
        for tensor, frame in zip(output, self._output, strict=True):
            for channel, plane in zip(tensor, planes, strict=True):
                # uint8 with rounding half to even and clamping to 0…255, cropped
                crop = channel[:h, :w]
                cv2.addWeighted(crop, alpha, crop, 0.0, gamma, plane, cv2.CV_8U)
            cv2.merge(planes, frame)
        return self._output


def _reflect_pad_into(frames: np.ndarray, out: np.ndarray) -> None:
    """Copy ``frames`` to the top-left of ``out``, the rest by reflection (edge not repeated)."""
    _, h, w, _ = frames.shape
    _, hp, wp, _ = out.shape
    if hp - h >= h or wp - w >= w:
        raise ValueError(f"a {w}×{h} frame is too small to reflect-pad to {wp}×{hp}")
    out[:, :h, :w] = frames
    # Row h + i mirrors row h - 2 - i: a reversed view starting one row above the edge.
    out[:, h:, :w] = frames[:, h - 2 :: -1][:, : hp - h]
    out[:, :, w:] = out[:, :, w - 2 :: -1][:, :, : wp - w]

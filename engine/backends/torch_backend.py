"""PyTorch backend: eager CPU or CUDA, fp16/bf16, channels-last and CUDA graphs on the GPU."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.backends.base import BackendUnavailableError, ClosingBackend, check_frames
from engine.pipeline.convert import padded_size

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchBackend(ClosingBackend):
    """Runs a network of the zoo with PyTorch.

    Pre- and post-processing happen on the model's device, so on a GPU only uint8 frames
    cross the bus: upload → NHWC→NCHW, scale to the model's range, reflect-pad to the multiple
    when needed → network → crop, map back to 0…255, clamp, round → uint8 NHWC → download.
    On CUDA the whole chain is captured once per frame shape in a CUDA graph and replayed
    (``cuda_graphs=True``), in fp16 or bf16 with channels-last memory format. The input,
    output and host buffers are allocated once per shape and reused.

    Args:
        model: the network (an ``ImageRestorationNet``), in any mode; it is put in eval mode.
        input_range: the model's value range ``(low, high)``.
        multiple: H and W are padded to a multiple of this.
        device: ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` (half precisions need CUDA).
        cuda_graphs: capture and replay a CUDA graph per frame shape.
        channels_last: NHWC memory format on CUDA (faster convolutions with tensor cores).
    """

    name = "torch"

    def __init__(
        self,
        model: nn.Module,
        input_range: tuple[float, float],
        multiple: int,
        device: str = "cpu",
        precision: str = "fp32",
        cuda_graphs: bool = True,
        channels_last: bool = True,
    ) -> None:
        if precision not in _DTYPES:
            raise ValueError(f"torch backend precision must be one of {sorted(_DTYPES)}")
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendUnavailableError(
                "torch backend on CUDA needs a CUDA build of PyTorch and an NVIDIA GPU; "
                f"this torch ({torch.__version__}) sees no GPU"
            )
        if dev.type == "cpu" and precision != "fp32":
            raise BackendUnavailableError("torch backend runs fp16/bf16 on CUDA only; use fp32")
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        self.device = str(dev)
        self.precision = precision
        self._dev = dev
        self._dtype = _DTYPES[precision]
        self._channels_last = channels_last and dev.type == "cuda"
        self._use_graphs = cuda_graphs and dev.type == "cuda"
        self.model = model.eval().to(dev, self._dtype)
        if hasattr(self.model, "return_all"):
            self.model.return_all = False
        if self._channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        lo, hi = (float(v) for v in input_range)
        self._low, self._scale = lo, (hi - lo) / 255.0
        self._multiple = int(multiple)
        self._shape: tuple[int, ...] | None = None
        self._graph: torch.cuda.CUDAGraph | None = None

    @classmethod
    def from_architecture(
        cls,
        architecture: str,
        weights: str | os.PathLike | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        **kwargs,
    ) -> TorchBackend:
        """Build the registered network ``architecture``, load ``weights`` and wrap it.

        Args:
            architecture: registry name.
            weights: a state dict (``.pth``; a training checkpoint's ``"model"`` entry works).
            device: ``"cpu"`` or ``"cuda[:N]"``.
            precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
            **kwargs: passed to the constructor (``cuda_graphs``, ``channels_last``).
        """
        from engine.models import create_model, get_spec

        spec = get_spec(architecture)
        model = create_model(architecture)
        if weights is not None:
            try:
                state = torch.load(weights, map_location="cpu", weights_only=True)
            except (OSError, RuntimeError) as exc:
                raise BackendUnavailableError(f"cannot read weights {weights}: {exc}") from None
            model.load_state_dict(state.get("model", state) if isinstance(state, dict) else state)
        return cls(model, spec.input_range, spec.multiple, device, precision, **kwargs)

    # -- the per-shape buffers and the captured chain ---------------------------------------

    def _prepare(self, shape: tuple[int, ...]) -> None:
        _, h, w, _ = shape
        pinned = self._dev.type == "cuda"
        self._host_out = torch.empty(shape, dtype=torch.uint8, pin_memory=pinned)
        self._host_in = torch.empty(shape, dtype=torch.uint8, pin_memory=pinned)
        self._dev_in = torch.empty(shape, dtype=torch.uint8, device=self._dev)
        self._dev_out = torch.empty(shape, dtype=torch.uint8, device=self._dev)
        self._pad = padded_size(h, w, self._multiple)
        self._shape = shape
        self._graph = None
        if self._use_graphs:
            self._capture()

    def _chain(self) -> None:
        """uint8 NHWC on the device → network → uint8 NHWC on the device (in place)."""
        _, h, w, _ = self._shape
        x = self._dev_in.permute(0, 3, 1, 2).to(self._dtype)
        x = x * self._scale + self._low
        hp, wp = self._pad
        if (hp, wp) != (h, w):
            x = F.pad(x, (0, wp - w, 0, hp - h), mode="reflect")
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = self.model(x)[..., :h, :w]
        y = ((y.float() - self._low) / self._scale).clamp_(0.0, 255.0).round_()
        self._dev_out.copy_(y.permute(0, 2, 3, 1))

    def _capture(self) -> None:
        # Warm up on a side stream first (cuDNN picks its algorithms), then record the chain.
        side = torch.cuda.Stream(self._dev)
        side.wait_stream(torch.cuda.current_stream(self._dev))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):
                self._chain()
        torch.cuda.current_stream(self._dev).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            self._chain()
        self._graph = graph

    # -- the Backend protocol -------------------------------------------------------------

    def infer(self, frames: np.ndarray) -> np.ndarray:
        """Deblur a uint8 NHWC batch; returns a reused uint8 buffer of the same shape."""
        check_frames(frames)
        if frames.shape != self._shape:
            self._prepare(frames.shape)
        host_in = self._host_in.numpy()
        np.copyto(host_in, frames)
        self._dev_in.copy_(self._host_in, non_blocking=True)
        if self._graph is not None:
            self._graph.replay()
        else:
            with torch.inference_mode():
                self._chain()
        self._host_out.copy_(self._dev_out, non_blocking=True)
        if self._dev.type == "cuda":
            torch.cuda.current_stream(self._dev).synchronize()
        return self._host_out.numpy()

    def warmup(self, shape: tuple[int, int, int, int]) -> None:
        """Run once on zeros of ``shape`` (N, H, W, 3)."""
        self.infer(np.zeros(shape, np.uint8))

    def close(self) -> None:
        """Drop the graph and buffers; the model stays usable until garbage-collected."""
        self._graph = None
        self._shape = None
        if self._dev.type == "cuda":
            torch.cuda.empty_cache()

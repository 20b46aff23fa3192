"""Export any network of the zoo to ONNX with dynamic batch, height and width."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.atomic import atomic_output
from engine.modelcard import ModelCard, sha256_of

DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    sample_size: tuple[int, int] = (256, 256),
) -> Path:
    """Write ``model`` (in eval mode, final output only) as an ONNX file.

    Batch, height and width are dynamic: the graph computes the reflection padding to the
    model's multiple and the crop back from the input's shape, so one file serves every
    frame size. The file is written next to ``path`` under a temporary name and renamed
    when complete, so a failed export never leaves a truncated file behind.

    Args:
        model: a network of the zoo (``ImageRestorationNet``).
        path: destination ``.onnx`` file.
        opset: ONNX opset, at least 17.
        sample_size: (height, width) of the tracing input; any size works.

    Returns:
        The path written.
    """
    if opset < 17:
        raise ValueError(f"opset must be at least 17, got {opset}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    return_all = getattr(model, "return_all", False)
    model.eval()
    if return_all:
        model.return_all = False
    device = next(model.parameters()).device
    x = torch.rand(1, 3, *sample_size, device=device)
    try:
        with atomic_output(path) as tmp, warnings.catch_warnings():
            # The tracer warns about shape arithmetic that it records symbolically; the padding
            # depends on it by design, and the parity checks prove the graph stays dynamic.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (x,),
                tmp,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={
                    INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                    OUTPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                },
                do_constant_folding=True,
            )
    finally:
        model.train(was_training)
        if return_all:
            model.return_all = True
    return path


def onnx_parity(
    model: nn.Module, onnx_path: str | os.PathLike, inputs: list[np.ndarray]
) -> list[float]:
    """Max absolute difference between ONNX Runtime (CPU) and PyTorch for each input.

    Args:
        model: the PyTorch network that was exported.
        onnx_path: the exported file.
        inputs: float32 NCHW arrays in the model's input range.

    Returns:
        One max-abs error per input.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(os.fspath(onnx_path), providers=["CPUExecutionProvider"])
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    errors = []
    try:
        for arr in inputs:
            (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: arr})
            with torch.no_grad():
                want = model(torch.from_numpy(arr).to(device))
                if isinstance(want, (list, tuple)):
                    want = want[-1]
            errors.append(float(np.abs(got - want.cpu().numpy()).max()))
    finally:
        model.train(was_training)
    return errors


def export_with_card(
    model: nn.Module, architecture: str, path: str | os.PathLike, version: str = "0"
) -> ModelCard:
    """Export ``model`` to ``path``, save its state dict beside it and write a model card.

    The card records the architecture's range and multiple, the parameter count and the
    sha256 of the file; training data and metrics are left empty (the weights are whatever
    ``model`` holds, e.g. random for benchmarks).

    Returns:
        The saved card (``path`` with the ``.json`` suffix).
    """
    from engine.models.complexity import count_parameters
    from engine.models.registry import get_spec

    spec = get_spec(architecture)
    path = Path(path)
    export_onnx(model, path)
    weights = path.with_suffix(".pth")
    torch.save(model.state_dict(), weights)
    card = ModelCard(
        name=path.stem,
        architecture=architecture,
        version=version,
        input_range=list(spec.input_range),
        multiple=spec.multiple,
        onnx=path.name,
        sha256=sha256_of(path),
        weights=weights.name,
        params=count_parameters(model),
        description=spec.summary,
    )
    card.save(path.with_suffix(".json"))
    return card


def export_registered(name: str, path: str | os.PathLike, seed: int = 0) -> ModelCard:
    """Build the registered network ``name`` with seeded random weights and export it with a card.

    For benchmarks and plumbing tests: speed and shapes do not depend on the weights.
    """
    from engine.models.registry import create_model

    torch.manual_seed(seed)
    return export_with_card(create_model(name), name, path)

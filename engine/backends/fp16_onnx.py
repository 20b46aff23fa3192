"""fp16 copies of fp32 ONNX models, typed for TensorRT strongly-typed networks.

A strongly-typed TensorRT network runs every layer in the type the ONNX graph gives it, so
the fp16 graph must be fp16 from input to output, with float32 left only where an operator
demands it. :func:`convert_to_fp16` produces such a graph; :func:`fp16_max_error` measures
what the conversion costs on a real image.

The conversion is written here on top of the ``onnx`` package rather than taken from
``onnxconverter-common``: that converter (1.16) either turns Resize ``scales`` into float16,
which ONNX forbids, or, with Resize on its default block list, runs every Resize in float32
with a Cast of the whole feature map on each side. Here the operator schemas of ``onnx``
decide, for each input, which element types are legal, and float32 stays exactly where they
require it.

The module imports neither torch nor Qt; ``onnx`` and ``onnxruntime`` are imported when used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import atomic_output
from engine.backends.base import BackendUnavailableError
from engine.pipeline.convert import FrameConverter

#: Bumped whenever the converter's output changes, so cached fp16 files are made anew.
FP16_CONVERTER_VERSION = 1

_FP16_MAX = float(np.finfo(np.float16).max)

# TensorProto element types (fixed by the ONNX standard; named here so the module imports
# without onnx).
_FLOAT, _FLOAT16 = 1, 10
_TYPE_NAMES = {"tensor(float)": _FLOAT, "tensor(float16)": _FLOAT16}
# Operators whose output type comes from an attribute, not from a type parameter.
_ATTRIBUTE_TYPED = {"Cast"}


def _import_onnx() -> Any:
    """The ``onnx`` module, or a clear error naming the package to install."""
    try:
        import onnx
    except ImportError:
        raise BackendUnavailableError(
            "fp16 ONNX conversion needs the onnx package: pip install onnx "
            "(or pip install 'rtdeblur[tensorrt]')"
        ) from None
    return onnx


def convert_to_fp16(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Write an fp16 copy of the fp32 ONNX model ``src`` to ``dst``.

    Float32 initializers, constants and activations become float16, and so do the graph's
    float inputs and outputs (the caller feeds and reads float16). Float32 stays where an
    operator's schema allows nothing else (Resize ``scales``) and in shape arithmetic that does
    not depend on pixel values (``Cast(Shape(x))`` and what is computed from it); explicit Cast
    nodes convert where the two meet. Constants are clipped to the float16 range (±65504)
    instead of overflowing to infinity. The file is written to a temporary name in the
    destination folder and renamed when complete.

    Args:
        src: the fp32 ONNX file.
        dst: the fp16 ONNX file to write (its folder is created).

    Returns:
        ``dst`` as a :class:`~pathlib.Path`.

    Raises:
        BackendUnavailableError: the ``onnx`` package is not installed.
        ValueError: the graph has control flow (If/Loop/Scan) or operators of another domain,
            which this converter does not handle.
        onnx.checker.ValidationError: the converted graph fails ONNX's strict checks (a bug
            in the converter; nothing is written).
    """
    onnx = _import_onnx()
    dst = Path(dst)
    model = onnx.load(os.fspath(src))
    converted = fp16_model(model)
    # Strict type and shape inference over the whole graph: a type mismatch left by the
    # conversion fails here rather than in TensorRT's parser on the user's machine.
    onnx.checker.check_model(converted, full_check=True)
    with atomic_output(dst) as tmp:
        onnx.save_model(converted, os.fspath(tmp))
    return dst


def fp16_model(model: Any) -> Any:
    """The fp16 version of an in-memory fp32 ``onnx.ModelProto`` (see :func:`convert_to_fp16`).

    Args:
        model: the fp32 model; it is not modified.

    Returns:
        A new ``ModelProto``.
    """
    return _Fp16Converter(_import_onnx(), model).run()


class _Fp16Converter:
    """One conversion: walks the (topologically sorted) nodes once, fixing types as it goes.

    A float tensor becomes float16 when it depends on the values of a float graph input
    ("pixel data"); float tensors computed only from constants and shapes stay float32.
    Constants (initializers and ``Constant`` nodes) take whatever type their consumer needs,
    through a converted copy; other tensors are converted by inserting a Cast node.
    """

    def __init__(self, onnx: Any, model: Any) -> None:
        self.onnx = onnx
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        graph = self.model.graph
        self.opsets = {imp.domain or "": imp.version for imp in self.model.opset_import}
        self.used_names = {n.name for n in graph.node} | {
            name for n in graph.node for name in (*n.input, *n.output)
        }
        self.used_names |= {t.name for t in graph.initializer} | {i.name for i in graph.input}
        # Original element types of every tensor: type inference on the unmodified graph.
        inferred = onnx.shape_inference.infer_shapes(self.model)
        self.original: dict[str, int] = {}
        for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
            self.original[info.name] = info.type.tensor_type.elem_type
        # Float constants by name, as float32 arrays: converted on demand.
        self.constants: dict[str, np.ndarray] = {}
        # Element type of each non-constant tensor in the converted graph.
        self.current: dict[str, int] = {}
        # (name, element type) -> name of the converted constant or Cast output.
        self.variants: dict[tuple[str, int], str] = {}
        self.new_initializers: list[Any] = []
        self.nodes: list[Any] = []

    def run(self) -> Any:
        onnx, graph = self.onnx, self.model.graph
        initializer_names = {t.name for t in graph.initializer}
        kept_initializers = []
        for tensor in graph.initializer:
            if tensor.data_type == _FLOAT:
                self.constants[tensor.name] = onnx.numpy_helper.to_array(tensor)
            else:
                kept_initializers.append(tensor)
                self.current[tensor.name] = tensor.data_type
        # Old IR versions list initializers among the inputs too; they are constants, not feeds.
        inputs = [i for i in graph.input if i.name not in initializer_names]
        for info in inputs:
            elem = info.type.tensor_type.elem_type
            if elem == _FLOAT:
                info.type.tensor_type.elem_type = _FLOAT16
                elem = _FLOAT16
            self.current[info.name] = elem

        for node in graph.node:
            self._convert_node(node)
        self._fix_outputs()

        # Float32 constants still referenced keep their original form; unreferenced ones go.
        referenced = {name for n in self.nodes for name in n.input}
        referenced |= {o.name for o in graph.output}
        fp32_left = [
            onnx.numpy_helper.from_array(value, name)
            for name, value in self.constants.items()
            if name in referenced
        ]
        del graph.node[:]
        graph.node.extend(self.nodes)
        del graph.initializer[:]
        graph.initializer.extend([*kept_initializers, *fp32_left, *self.new_initializers])
        del graph.input[:]
        graph.input.extend(inputs)
        # Intermediate type annotations describe the fp32 graph; inference recomputes them.
        del graph.value_info[:]
        return self.model

    # -- per node -----------------------------------------------------------------------

    def _convert_node(self, node: Any) -> None:
        onnx = self.onnx
        for attr in node.attribute:
            if attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS):
                raise ValueError(
                    f"fp16 conversion does not handle control flow ({node.op_type} node "
                    f"{node.name!r})"
                )
        is_constant = node.op_type == "Constant" and (node.domain or "") == ""
        if is_constant and self._constant_to_initializer(node):
            return
        if node.op_type == "Identity" and node.input[0] in self.constants:
            # The exporter aliases shared weights through Identity; an alias of a constant is
            # a constant, so its consumers get a converted copy instead of a run-time Cast.
            self.constants[node.output[0]] = self.constants[node.input[0]]
            return
        schema = self._schema(node)
        in_types = _formal_types(schema.inputs, len(node.input))
        out_types = _formal_types(schema.outputs, len(node.output))
        allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}

        def legal(type_str: str) -> set[int]:
            names = allowed.get(type_str, {type_str})
            return {_TYPE_NAMES[n] for n in names if n in _TYPE_NAMES}

        # Group the float inputs by type parameter: a parameter shared with a float16 pixel
        # tensor makes its whole group float16; one shared with a float32 non-constant tensor
        # (shape arithmetic) keeps its constants float32.
        fp16_params, fp32_params = set(), set()
        for name, type_str in zip(node.input, in_types, strict=True):
            if name and name not in self.constants:
                have = self.current.get(name)
                if have == _FLOAT16 and _FLOAT16 in legal(type_str):
                    fp16_params.add(type_str)
                elif have == _FLOAT:
                    fp32_params.add(type_str)
        fp32_params -= fp16_params
        decided: dict[str, int] = {}
        new_inputs = []
        for name, type_str in zip(node.input, in_types, strict=True):
            if not name:
                new_inputs.append(name)
                continue
            ok = legal(type_str)
            if name in self.constants:
                have = _FLOAT
                if type_str in fp16_params:
                    want = _FLOAT16
                elif type_str in fp32_params:
                    want = _FLOAT
                else:
                    # Weights and parameters of a node that processes pixels follow the
                    # pixels, even in a separate type group (BatchNormalization's mean/var).
                    want = _FLOAT16 if fp16_params and _FLOAT16 in ok else _FLOAT
            else:
                have = self.current.get(name, self.original.get(name, 0))
                if have not in (_FLOAT, _FLOAT16):
                    new_inputs.append(name)
                    continue
                if type_str in fp16_params:
                    want = _FLOAT16
                elif have in ok or not ok:
                    want = have
                else:
                    want = _FLOAT  # e.g. Resize scales: float32 by definition
            decided[type_str] = want
            new_inputs.append(name if want == have else self._variant(name, want))
        del node.input[:]
        node.input.extend(new_inputs)

        if node.op_type in _ATTRIBUTE_TYPED:
            self._convert_cast(node)
            return
        for name, type_str in zip(node.output, out_types, strict=True):
            if not name:
                continue
            ok = legal(type_str)
            if type_str in decided and decided[type_str] in ok:
                self.current[name] = decided[type_str]
            elif len(ok) == 1:
                self.current[name] = next(iter(ok))
            else:
                self.current[name] = self.original.get(name, 0)
        self.nodes.append(node)

    def _convert_cast(self, node: Any) -> None:
        """Cast to float32 of float16 pixel data becomes a cast to float16.

        Casts from integers (shape arithmetic) keep producing float32.
        """
        to = next(a for a in node.attribute if a.name == "to")
        if to.i == _FLOAT and self.current.get(node.input[0]) == _FLOAT16:
            to.i = _FLOAT16
        self.current[node.output[0]] = to.i
        self.nodes.append(node)

    def _constant_to_initializer(self, node: Any) -> bool:
        """Turn a float ``Constant`` node into a flexible constant; False if it is not one."""
        value = next((a for a in node.attribute if a.name == "value"), None)
        if value is None or value.t.data_type != _FLOAT or len(node.attribute) != 1:
            return False
        self.constants[node.output[0]] = self.onnx.numpy_helper.to_array(value.t)
        return True

    def _fix_outputs(self) -> None:
        """Float graph outputs end as float16, with a final Cast where the graph made fp32."""
        for info in self.model.graph.output:
            name = info.name
            if info.type.tensor_type.elem_type not in (_FLOAT, _FLOAT16):
                continue
            info.type.tensor_type.elem_type = _FLOAT16
            if name in self.constants:
                raise ValueError(f"graph output {name!r} is a constant; nothing to convert")
            if self.current.get(name) == _FLOAT16:
                continue
            # Rename the producer's output and let a Cast produce the graph output's name.
            inner = self._fresh(f"{name}_fp32")
            for node in self.nodes:
                for i, out in enumerate(node.output):
                    if out == name:
                        node.output[i] = inner
                for i, inp in enumerate(node.input):
                    if inp == name:
                        node.input[i] = inner
            self.nodes.append(
                self.onnx.helper.make_node(
                    "Cast", [inner], [name], name=self._fresh(f"{name}_to_fp16"), to=_FLOAT16
                )
            )

    # -- helpers ------------------------------------------------------------------------

    def _schema(self, node: Any) -> Any:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx"):
            raise ValueError(
                f"fp16 conversion handles standard ONNX operators only, not "
                f"{domain}::{node.op_type}"
            )
        return self.onnx.defs.get_schema(node.op_type, self.opsets.get("", 1), "")

    def _variant(self, name: str, elem: int) -> str:
        """``name`` as element type ``elem``: a converted constant or a new Cast's output."""
        key = (name, elem)
        if key in self.variants:
            return self.variants[key]
        suffix = "fp16" if elem == _FLOAT16 else "fp32"
        new = self._fresh(f"{name}_{suffix}")
        if name in self.constants:
            value = self.constants[name]
            if elem == _FLOAT16:
                # Finite values beyond the float16 range saturate instead of becoming inf.
                finite = np.isfinite(value)
                value = np.where(finite, np.clip(value, -_FP16_MAX, _FP16_MAX), value)
                value = value.astype(np.float16)
            self.new_initializers.append(self.onnx.numpy_helper.from_array(value, new))
        else:
            self.nodes.append(
                self.onnx.helper.make_node(
                    "Cast", [name], [new], name=self._fresh(f"{new}_cast"), to=elem
                )
            )
            self.current[new] = elem
        self.variants[key] = new
        return new

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.used_names:
            name, i = f"{base}_{i}", i + 1
        self.used_names.add(name)
        return name


def _formal_types(params: Any, count: int) -> list[str]:
    """The type string of each of ``count`` actual inputs (or outputs) of a node.

    The last formal parameter may be variadic: it then covers every remaining actual one.
    """
    types = [p.type_str for p in params]
    if not types:
        return [""] * count
    if len(types) < count:
        types += [types[-1]] * (count - len(types))
    return types[:count]


def fp16_max_error(
    fp32_path: str | os.PathLike,
    fp16_path: str | os.PathLike,
    image_rgb_uint8: np.ndarray,
    input_range: tuple[float, float],
    multiple: int,
) -> float:
    """Largest difference between the fp32 and fp16 models' uint8 outputs on one image.

    Both models run with ONNX Runtime on the CPU, with the same pre- and post-processing as
    the backends (:class:`~engine.pipeline.convert.FrameConverter`: pad, scale, clamp, round,
    crop); the fp16 model is fed float16. ONNX Runtime's CPU kernels compute some float16
    operators in float32 internally, so this measures the cost of float16 weights and
    activations between operators, not of every float16 kernel TensorRT may pick.

    Args:
        fp32_path: the fp32 ONNX model.
        fp16_path: its fp16 version (float16 input and output).
        image_rgb_uint8: one RGB image, or a batch of them.
        input_range: the model's value range ``(low, high)``.
        multiple: H and W are padded to a multiple of this.

    Returns:
        The maximum absolute difference in 0…255 units.

    Shape:
        - image_rgb_uint8: :math:`(H, W, 3)` or :math:`(N, H, W, 3)`
    """
    import onnxruntime as ort

    frames = np.ascontiguousarray(
        image_rgb_uint8[None] if image_rgb_uint8.ndim == 3 else image_rgb_uint8
    )
    outputs = []
    for path, dtype in ((fp32_path, np.float32), (fp16_path, np.float16)):
        session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
        converter = FrameConverter(input_range, multiple, dtype=dtype)
        feed = {session.get_inputs()[0].name: converter.to_input(frames)}
        (raw,) = session.run([session.get_outputs()[0].name], feed)
        outputs.append(converter.to_frames(raw).astype(np.int16))
    return float(np.abs(outputs[0] - outputs[1]).max())

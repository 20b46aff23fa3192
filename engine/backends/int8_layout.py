"""Graph rewrites that keep a QDQ model on ONNX Runtime's fast uint8 paths on the CPU.

ONNX Runtime runs the convolutions of an INT8 (QDQ) model channels-last and moves the ops
around them to that layout. Five things then cost far more than they should:

* **Nearest-neighbour upsampling.** A uint8 ``Resize`` in channels-last layout falls to
  ONNX Runtime's generic nearest loop: one thread, one output element at a time (its fast ×2
  path only covers channels-first ``[1, 1, 2, 2]`` scales). In the FPN decoders the seven
  upsamplings took ~20 % of an INT8 frame. :func:`nearest_upsampling_as_copies` writes each
  integer-factor nearest ``Resize`` as the same values built from whole-row copies: transpose
  to channels-last, ``Unsqueeze`` + ``Concat`` along a new axis once for the width and once
  for the height, ``Reshape``, transpose back. In the QDQ model those become uint8
  ``Concat``/``Reshape``/``Unsqueeze`` in channels-last layout (block copies of ``C`` and
  ``W·C`` bytes) and the transposes cancel against the ones the layout pass inserts.
* **Shapes of dequantised tensors.** A ``Shape`` that reads a ``DequantizeLinear`` output
  makes ONNX Runtime materialise the whole float tensor (and its layout transpose) only to
  read four numbers. :func:`shapes_before_dequantize` reads the shape of the quantised tensor
  instead (a ``DequantizeLinear`` keeps the shape).
* **Rearrangements of dequantised tensors.** The quantiser leaves ``DepthToSpace`` in float
  (``DequantizeLinear`` → ``DepthToSpace``); :func:`rearrange_before_dequantize` swaps the two,
  so that the pixel shuffle moves bytes instead of floats (exact: it only moves values).
* **Convolutions of the image itself.** A uint8 convolution with 3 input channels (the
  network's first layer) runs 2.5–3.5× slower than the same convolution in float: the
  channels-last im2col moves 3 bytes at a time. :func:`image_convolutions` names them so that
  the quantiser leaves them out, and :func:`float_inputs_for` feeds them the float tensor
  instead of its quantise–dequantise round trip (otherwise ONNX Runtime quantises the
  convolution again when it loads the file).

* **Concatenations of tensors on different grids.** ``QLinearConcat`` re-quantises every
  input whose scale or zero point differs from its output's, through a table, pixel by pixel;
  :func:`concat_inputs_on_output_grid` has those inputs quantised on the output's grid where
  they are computed, so that it copies.

The first three rewrites are exact, same output values on every input: the upsampling one is
also checked on a real frame by the caller (:func:`engine.backends.quantize.quantize_int8`)
before it is used; the other two only change where the same values are read. The fourth keeps
a layer in float (at least as accurate), and the fifth rounds each concatenated value once
instead of twice (each is the output grid's nearest to the float value). They work on
``onnx.ModelProto`` objects; ``onnx`` is imported by the caller.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Channels-first → channels-last and back.
_TO_NHWC, _TO_NCHW = [0, 2, 3, 1], [0, 3, 1, 2]


def _constants(model: Any) -> dict[str, np.ndarray]:
    """Values of the graph's initializers and ``Constant`` nodes, by output name."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1:
            attr = node.attribute[0]
            if attr.name == "value":
                values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value.decode() if isinstance(value, bytes) else str(value)


def upsampling_factor(node: Any, constants: dict[str, np.ndarray]) -> int | None:
    """The integer factor of a ``Resize`` that only repeats pixels, or ``None``.

    Repeating pixels means: nearest mode, ``asymmetric`` coordinates with ``floor`` rounding
    (what PyTorch's ``interpolate(mode="nearest")`` exports), a constant ``scales`` input of
    ``[1, 1, s, s]`` with an integer ``s ≥ 2``, no ``sizes`` input, no ``axes`` and no
    antialiasing. Any other ``Resize`` is left alone.
    """
    if node.op_type != "Resize" or node.domain not in ("", "ai.onnx"):
        return None
    attrs = _attributes(node)
    if (
        _text(attrs.get("mode"), "nearest") != "nearest"
        or _text(attrs.get("coordinate_transformation_mode"), "half_pixel") != "asymmetric"
        or _text(attrs.get("nearest_mode"), "round_prefer_floor") != "floor"
        or attrs.get("antialias", 0)
        or "axes" in attrs
    ):
        return None
    inputs = list(node.input) + [""] * (4 - len(node.input))
    if not inputs[2] or inputs[3] or inputs[2] not in constants:
        return None
    scales = np.asarray(constants[inputs[2]], dtype=np.float64).ravel()
    if scales.shape != (4,) or scales[0] != 1 or scales[1] != 1 or scales[2] != scales[3]:
        return None
    factor = scales[2]
    if factor < 2 or factor != int(factor):
        return None
    return int(factor)


def nearest_upsampling_as_copies(model: Any) -> int:
    """Rewrite every pixel-repeating ``Resize`` of ``model`` (in place) as block copies.

    See the module's docstring. ``Resize`` nodes that do anything else stay as they are.

    Args:
        model: an ``onnx.ModelProto`` (opset ≥ 11).

    Returns:
        How many ``Resize`` nodes were rewritten.
    """
    from onnx import helper, numpy_helper

    constants = _constants(model)
    axes_as_input = _opset(model) >= 13  # Unsqueeze took its axes as an attribute before 13
    graph = model.graph
    nodes, rewritten, replaced = [], 0, set()
    for node in graph.node:
        factor = upsampling_factor(node, constants)
        if factor is None:
            nodes.append(node)
            continue
        rewritten += 1
        replaced.update(node.input[1:])
        x, y = node.input[0], node.output[0]
        p = f"{node.name or y}/copies"

        def const(suffix: str, value: list[int], p: str = p) -> str:
            name = f"{p}/const_{suffix}"
            graph.initializer.append(numpy_helper.from_array(np.array(value, np.int64), name))
            return name

        def unsqueeze(src: str, dst: str, axis: int) -> Any:
            if axes_as_input:
                return helper.make_node("Unsqueeze", [src, const(f"axis{axis}", [axis])], [dst])
            return helper.make_node("Unsqueeze", [src], [dst], axes=[axis])

        nodes += [
            # The output's channels-last shape: [N, H·s, W·s, C].
            helper.make_node("Shape", [x], [f"{p}/shape"]),
            helper.make_node(
                "Gather", [f"{p}/shape", const("nhwc", _TO_NHWC)], [f"{p}/nhwc_shape"], axis=0
            ),
            helper.make_node(
                "Mul", [f"{p}/nhwc_shape", const("factors", [1, factor, factor, 1])], [f"{p}/out"]
            ),
            helper.make_node("Transpose", [x], [f"{p}/nhwc"], perm=_TO_NHWC),
            # Each pixel's C values repeated s times along a new axis after W ...
            unsqueeze(f"{p}/nhwc", f"{p}/w1", 3),
            helper.make_node("Concat", [f"{p}/w1"] * factor, [f"{p}/w"], axis=3),
            # ... and each row of W·s·C values s times along a new axis after H.
            unsqueeze(f"{p}/w", f"{p}/h1", 2),
            helper.make_node("Concat", [f"{p}/h1"] * factor, [f"{p}/h"], axis=2),
            helper.make_node("Reshape", [f"{p}/h", f"{p}/out"], [f"{p}/up"]),
            helper.make_node("Transpose", [f"{p}/up"], [y], perm=_TO_NCHW),
        ]
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        _drop_unused_constants(graph, replaced)
    return rewritten


def _drop_unused_constants(graph: Any, names: set[str]) -> None:
    """Remove the initializers and ``Constant`` nodes among ``names`` (the inputs of the
    rewritten nodes: scales, roi) that nothing reads any more, so that ONNX Runtime does not
    warn about each one."""
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    unused = names - read - {i.name for i in graph.input}
    if not unused:
        return
    kept = [n for n in graph.node if not (n.op_type == "Constant" and n.output[0] in unused)]
    del graph.node[:]
    graph.node.extend(kept)
    inits = [init for init in graph.initializer if init.name not in unused]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def shapes_before_dequantize(model: Any) -> int:
    """Point every ``Shape`` that reads a ``DequantizeLinear`` output at its quantised input.

    Args:
        model: an ``onnx.ModelProto`` in QDQ format (changed in place).

    Returns:
        How many ``Shape`` nodes now read a quantised tensor.
    """
    producers = _producers(model.graph)
    moved = 0
    for node in model.graph.node:
        if node.op_type != "Shape" or not node.input:
            continue
        dq = _made_by(producers, node.input[0], "DequantizeLinear")
        if dq is not None:
            node.input[0] = dq.input[0]
            moved += 1
    return moved


#: Ops that only move values around, with uint8 kernels in ONNX Runtime's CPU provider.
_REARRANGEMENTS = ("DepthToSpace", "SpaceToDepth")


def rearrange_before_dequantize(model: Any) -> int:
    """Run each ``DepthToSpace``/``SpaceToDepth`` that reads a per-tensor
    ``DequantizeLinear`` (and is its only reader) on the quantised tensor instead, and
    dequantise its output (``model`` changes in place, nodes stay in topological order).

    Returns:
        How many pairs were swapped.
    """
    graph = model.graph
    constants = _constants(model)
    producers = _producers(graph)
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    swapped = []
    for node in graph.node:
        if node.op_type not in _REARRANGEMENTS:
            continue
        dq = _made_by(producers, node.input[0], "DequantizeLinear")
        if dq is None or readers[dq.output[0]] != 1 or dq.output[0] in outputs:
            continue
        scale = constants.get(dq.input[1])
        if scale is None or np.asarray(scale).size != 1:  # per-channel scales move with C
            continue
        moved = f"{node.output[0]}/quantised"
        node.input[0], node.output[0], dq.input[0], dq.output[0] = (
            dq.input[0],
            moved,
            moved,
            node.output[0],
        )
        swapped.append((dq, node))
    if swapped:
        order = list(graph.node)
        for dq, node in swapped:  # the rearrangement now comes first, its dequantise after
            i, j = order.index(dq), order.index(node)
            order[i], order[j] = order[j], order[i]
        del graph.node[:]
        graph.node.extend(order)
    return len(swapped)


def _producers(graph: Any) -> dict[str, Any]:
    """Each node of ``graph`` by the names of the tensors it produces."""
    return {out: node for node in graph.node for out in node.output}


def _made_by(producers: dict[str, Any], tensor: str, op_type: str) -> Any:
    """The node that produces ``tensor`` when it is an ``op_type`` node, else ``None``."""
    node = producers.get(tensor)
    return node if node is not None and node.op_type == op_type else None


def image_convolutions(model: Any, most_channels: int = 4) -> list[str]:
    """Names of the ``Conv`` nodes with at most ``most_channels`` input channels (and one
    group): the convolutions of the image itself, faster in float than in uint8; and of the
    ``Pad`` nodes that feed them.

    Unnamed ones are given a name (``model`` changes in place), so that the quantiser's
    ``nodes_to_exclude`` can list them.
    """
    constants = _constants(model)
    producers = _producers(model.graph)
    names = []
    for index, node in enumerate(model.graph.node):
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in constants:
            continue
        weight = constants[node.input[1]]
        if weight.ndim != 4 or _attributes(node).get("group", 1) != 1:
            continue
        if weight.shape[1] <= most_channels:
            if not node.name:
                node.name = f"image_conv_{index}"
            names.append(node.name)
            # The padding in front of it stays in float too, or the quantiser would round
            # the image to 8 bits and back only to pad it.
            pad = _made_by(producers, node.input[0], "Pad")
            while pad is not None:
                if not pad.name:
                    pad.name = f"image_pad_{len(names)}"
                names.append(pad.name)
                pad = _made_by(producers, pad.input[0], "Pad")
    return names


def float_inputs_for(model: Any, names: list[str]) -> int:
    """Feed the named nodes of a QDQ ``model`` (in place) the float tensor that a
    ``QuantizeLinear`` → ``DequantizeLinear`` pair hands them, skipping the round trip.

    Returns:
        How many inputs now read the float tensor.
    """
    producers = _producers(model.graph)
    wanted, moved = set(names), 0
    for node in model.graph.node:
        if node.name not in wanted or not node.input:
            continue
        dq = _made_by(producers, node.input[0], "DequantizeLinear")
        q = None if dq is None else _made_by(producers, dq.input[0], "QuantizeLinear")
        if q is not None:
            node.input[0] = q.input[0]
            moved += 1
    return moved


#: Ops that hand on values of their data inputs without computing new ones. Between a
#: ``DequantizeLinear`` and a ``QuantizeLinear`` of one grid ONNX Runtime runs them on uint8.
_MOVES = frozenset(
    {"Transpose", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Slice", "Concat", "Identity"}
    | set(_REARRANGEMENTS)
)


def _grid(node: Any, constants: dict[str, np.ndarray], initializers: set[str]) -> Any:
    """``(scale, zero point, zero-point dtype)`` of a per-tensor Q/DQ node whose parameters
    are initializers, else ``None``."""
    if len(node.input) < 3 or not {node.input[1], node.input[2]} <= initializers:
        return None
    scale, zero = constants[node.input[1]], constants[node.input[2]]
    if scale.size != 1 or zero.size != 1:
        return None
    return float(scale.reshape(())), int(zero.reshape(())), zero.dtype


def concat_inputs_on_output_grid(model: Any) -> int:
    """Quantise the inputs of each ``Concat`` of a QDQ ``model`` on the grid of its output
    (in place), so that ONNX Runtime's ``QLinearConcat`` copies bytes.

    The quantiser gives every tensor its own scale and zero point. ``QLinearConcat`` then
    re-quantises each input whose grid differs from the output's through a lookup table, one
    channels-last pixel at a time (the concatenation of the four FPN heads at 1/4 resolution:
    2.1–3.6 ms of a 640×360 frame in profiles, 1.6 ms when it only copies). The concatenation
    rounds those inputs to its output's grid anyway; this rewrite has them quantised on that grid
    where they are made: each input's ``QuantizeLinear``/``DequantizeLinear`` nodes, back
    through the ops that only move values (:data:`_MOVES`) to the op that computed them, read
    the output's scale and zero point. Each value the concatenation hands on is then the one
    its grid holds closest to the float value: before, it was rounded to the input's grid first
    (one step of the output's grid off at times) and clipped to the input's range (narrower
    than the output's where a percentile calibration cut an input's tail).

    An input is left alone where any tensor on its way is also read by something outside that
    way (it would change for that reader too), is a graph output, or where the grids are
    per-channel, of another integer type, or not initializers.

    Returns:
        How many ``Concat`` nodes had inputs moved to their output's grid.
    """
    graph = model.graph
    constants = _constants(model)
    initializers = {init.name for init in graph.initializer}
    producers = _producers(graph)
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):
            readers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    replaced: set[str] = set()

    def way_back(dq: Any, grid: Any) -> list[Any] | None:
        """The Q/DQ nodes from ``dq`` back to the op that computed its values, all of one
        ``grid``, and the moves between them; ``None`` if the way is not a closed chain."""
        found, stack = [], [dq]
        while stack:
            dq = stack.pop()
            q = _made_by(producers, dq.input[0], "QuantizeLinear")
            if q is None or any(_grid(n, constants, initializers) != grid for n in (dq, q)):
                return None
            found += [dq, q]
            source = producers.get(q.input[0])
            if source is None or source.op_type not in _MOVES:
                continue  # q quantises what an op computed: the start of the way
            found.append(source)
            data = source.input if source.op_type == "Concat" else source.input[:1]
            for name in dict.fromkeys(data):  # copies concatenate one tensor many times
                before = _made_by(producers, name, "DequantizeLinear")
                if before is None:
                    return None
                stack.append(before)
        return found

    def closed(nodes: list[Any], concat: Any) -> bool:
        """Whether what ``nodes`` write is read only by ``nodes``, ``concat`` or ``Shape``
        nodes (which read no values), and is no graph output."""
        members = {id(node) for node in nodes} | {id(concat)}
        written = {out for node in nodes for out in node.output}
        return not written & outputs and all(
            id(reader) in members or reader.op_type == "Shape"
            for out in written
            for reader in readers.get(out, [])
        )

    moved = 0
    for concat in graph.node:
        after = readers.get(concat.output[0], [])
        if concat.op_type != "Concat" or len(after) != 1 or concat.output[0] in outputs:
            continue
        out_q = after[0]
        if out_q.op_type != "QuantizeLinear":
            continue
        target = _grid(out_q, constants, initializers)
        if target is None:
            continue
        chains = []
        for name in dict.fromkeys(concat.input):
            dq = _made_by(producers, name, "DequantizeLinear")
            grid = None if dq is None else _grid(dq, constants, initializers)
            if grid is None or grid == target or grid[2] != target[2]:
                continue
            chain = way_back(dq, grid)
            if chain is not None:
                chains.append(chain)
        # Inputs may share their way back (slices of one tensor): all of them together first.
        if not closed([node for chain in chains for node in chain], concat):
            chains = [chain for chain in chains if closed(chain, concat)]
        for chain in chains:
            for node in chain:
                if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
                    replaced.update(node.input[1:3])
                    node.input[1], node.input[2] = out_q.input[1], out_q.input[2]
        moved += bool(chains)
    _drop_unused_constants(graph, replaced)
    return moved

"""The INT8 graph rewrites: exact on every Resize they touch, and they leave the others alone."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from engine.backends.int8_layout import (  # noqa: E402
    concat_inputs_on_output_grid,
    float_inputs_for,
    image_convolutions,
    nearest_upsampling_as_copies,
    rearrange_before_dequantize,
    shapes_before_dequantize,
    upsampling_factor,
)

PYTORCH_NEAREST = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                   "nearest_mode": "floor"}  # fmt: skip


def _resize(name, x, y, scales=None, sizes=None, **attrs):
    # An empty roi (Resize-11 wants the input present; later opsets ignore it here).
    inputs = [x, f"{name}_roi", f"{name}_scales" if scales is not None else ""]
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), f"{name}_roi")]
    if scales is not None:
        inits.append(numpy_helper.from_array(np.array(scales, np.float32), f"{name}_scales"))
    if sizes is not None:
        inputs.append(f"{name}_sizes")
        inits.append(numpy_helper.from_array(np.array(sizes, np.int64), f"{name}_sizes"))
    return helper.make_node("Resize", inputs, [y], name=name, **attrs), inits


def _model(nodes_and_inits, outputs, opset):
    nodes = [n for n, _ in nodes_and_inits]
    inits = [i for _, ii in nodes_and_inits for i in ii]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "c", "h", "w"])],
        [
            helper.make_tensor_value_info(o, TensorProto.FLOAT, [None] * 4)
            if isinstance(o, str)
            else helper.make_tensor_value_info(*o)
            for o in outputs
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8  # what this ONNX Runtime reads
    return model


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


@pytest.mark.parametrize("opset", [12, 17])  # Unsqueeze axes: attribute before 13, input after
def test_pixel_repeating_resizes_become_copies_with_identical_output(opset):
    parts = [
        _resize("up2", "x", "a", [1, 1, 2, 2], **PYTORCH_NEAREST),
        _resize("up4", "a", "b", [1, 1, 4, 4], **PYTORCH_NEAREST),
        _resize("up3", "x", "c", [1, 1, 3, 3], **PYTORCH_NEAREST),
    ]
    model = _model(parts, ["b", "c"], opset)
    x = np.random.default_rng(0).standard_normal((2, 5, 7, 9)).astype(np.float32)
    before = _run(model, x)
    assert nearest_upsampling_as_copies(model) == 3
    assert not [n for n in model.graph.node if n.op_type == "Resize"]
    # The scales they read are gone too (ONNX Runtime warns about unused initializers).
    assert not [i for i in model.graph.initializer if i.name.endswith("_scales")]
    onnx.checker.check_model(model)
    after = _run(model, x)
    assert after[0].shape == (2, 5, 56, 72) and after[1].shape == (2, 5, 21, 27)
    for a, b in zip(before, after, strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "scales, sizes, attrs",
    [
        ([1, 1, 2, 2], None, {"mode": "linear"}),
        ([1, 1, 2, 2], None, {"mode": "nearest"}),  # half_pixel, round_prefer_floor
        ([1, 1, 2, 2], None, {**PYTORCH_NEAREST, "nearest_mode": "round_prefer_floor"}),
        ([1, 1, 1.5, 1.5], None, PYTORCH_NEAREST),
        ([1, 1, 2, 3], None, PYTORCH_NEAREST),
        ([1, 2, 2, 2], None, PYTORCH_NEAREST),
        ([1, 1, 0.5, 0.5], None, PYTORCH_NEAREST),
        (None, [1, 3, 8, 8], PYTORCH_NEAREST),
    ],
    ids=["linear", "half-pixel", "round", "fractional", "uneven", "channels", "down", "sizes"],
)
def test_other_resizes_are_left_alone(scales, sizes, attrs):
    node, inits = _resize("r", "x", "y", scales, sizes, **attrs)
    model = _model([(node, inits)], ["y"], 17)
    constants = {i.name: numpy_helper.to_array(i) for i in inits}
    assert upsampling_factor(node, constants) is None
    assert nearest_upsampling_as_copies(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Resize"]


def test_scales_from_a_constant_node_count_too():
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32))
    const = helper.make_node("Constant", [], ["s"], value=scales)
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], **PYTORCH_NEAREST)
    model = _model([(const, []), (node, [])], ["y"], 17)
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    before = _run(model, x)[0]
    assert nearest_upsampling_as_copies(model) == 1
    assert "Constant" not in [n.op_type for n in model.graph.node]
    assert np.array_equal(_run(model, x)[0], before)


def _qdq(src, dst, grid):
    """src → QuantizeLinear → DequantizeLinear → dst on the initializers named ``grid``."""
    return [
        helper.make_node("QuantizeLinear", [src, f"{grid}_s", f"{grid}_z"], [f"{dst}_q"]),
        helper.make_node("DequantizeLinear", [f"{dst}_q", f"{grid}_s", f"{grid}_z"], [dst]),
    ]


def _grids(**scales):
    return [
        init
        for name, scale in scales.items()
        for init in (
            numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
            numpy_helper.from_array(np.full(np.shape(scale), 128, np.uint8), f"{name}_z"),
        )
    ]


def test_shapes_read_the_quantised_tensor():
    nodes = [
        *_qdq("x", "xd", "g"),
        helper.make_node("Shape", ["xd"], ["shape"]),
        helper.make_node("Relu", ["xd"], ["y"]),
    ]
    model = _model([(n, []) for n in nodes], [("shape", TensorProto.INT64, [4]), "y"], 17)
    model.graph.initializer.extend(_grids(g=0.1))
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4)).astype(np.float32)
    before = _run(model, x)
    assert shapes_before_dequantize(model) == 1
    assert model.graph.node[2].input[0] == "xd_q"
    after = _run(model, x)
    assert after[0].tolist() == [1, 2, 3, 4]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert shapes_before_dequantize(model) == 0  # nothing left to move


def _weight(name, shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


def test_convolutions_of_the_image_are_named_for_float():
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["xp"], name="pad", mode="reflect"),
        helper.make_node("Conv", ["xp", "w_rgb"], ["a"], name="first"),
        helper.make_node("Conv", ["a", "w_dense"], ["b"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w_dw"], ["c"], group=3, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w_rgb"], ["d"], pads=[1, 1, 1, 1]),  # unnamed
    ]
    model = _model([(n, []) for n in nodes], ["b", "c", "d"], 17)
    model.graph.initializer.extend(
        [
            _weight("w_rgb", (8, 3, 3, 3)),
            _weight("w_dense", (8, 8, 3, 3)),
            _weight("w_dw", (3, 1, 3, 3)),
        ]
    )
    model.graph.initializer.append(
        numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    )
    names = image_convolutions(model)
    assert names[:2] == ["first", "pad"] and len(names) == 3  # the padding in front stays too
    assert model.graph.node[4].name == names[2]  # the unnamed one got a name to be listed by
    assert _run(model, np.ones((1, 3, 5, 5), np.float32))[0].shape == (1, 8, 5, 5)


def test_a_float_convolution_reads_the_tensor_before_its_quantisation():
    nodes = [
        *_qdq("x", "xd", "g"),
        helper.make_node("Conv", ["xd", "w"], ["y"], name="first", pads=[1, 1, 1, 1]),
    ]
    model = _model([(n, []) for n in nodes], ["y"], 17)
    model.graph.initializer.extend([*_grids(g=0.05), _weight("w", (4, 3, 3, 3))])
    x = np.random.default_rng(2).standard_normal((1, 3, 6, 6)).astype(np.float32)
    assert float_inputs_for(model, ["first"]) == 1
    assert model.graph.node[2].input[0] == "x"
    conv_alone = _model([(nodes[2], [])], ["y"], 17)
    conv_alone.graph.node[0].input[0] = "x"
    conv_alone.graph.initializer.extend([_weight("w", (4, 3, 3, 3))])
    assert np.array_equal(_run(model, x)[0], _run(conv_alone, x)[0])
    assert float_inputs_for(model, ["first"]) == 0  # already reads float


@pytest.mark.parametrize("per_channel", [False, True])
def test_a_pixel_shuffle_moves_quantised_values(per_channel):
    round_trip = _qdq("x", "xd", "g")
    if per_channel:
        for node in round_trip:
            node.attribute.append(helper.make_attribute("axis", 1))
    nodes = [
        *round_trip,
        helper.make_node("DepthToSpace", ["xd"], ["s"], blocksize=2, mode="CRD"),
        helper.make_node("Relu", ["s"], ["y"]),
    ]
    model = _model([(n, []) for n in nodes], ["y"], 17)
    model.graph.initializer.extend(_grids(g=np.full(8, 0.05) if per_channel else 0.05))
    x = np.random.default_rng(3).standard_normal((1, 8, 3, 5)).astype(np.float32)
    before = _run(model, x)[0]
    swapped = rearrange_before_dequantize(model)
    ops = [n.op_type for n in model.graph.node]
    if per_channel:  # the scales belong to the channels the shuffle folds away: left alone
        assert swapped == 0 and ops.index("DequantizeLinear") < ops.index("DepthToSpace")
    else:
        assert swapped == 1 and ops.index("DepthToSpace") < ops.index("DequantizeLinear")
    after = _run(model, x)[0]
    assert after.shape == (1, 2, 6, 10) and np.array_equal(after, before)


def _concat_model(shared_reader):
    """Three inputs on three grids concatenated on a fourth: ``a`` straight from a Mul,
    ``b`` through two transposes on uint8 (its Q output also read by a Shape), ``c`` on the
    output's grid already. With ``shared_reader`` a Relu reads ``a``'s dequantised values too."""
    nodes = [
        helper.make_node("Mul", ["x", "half"], ["a_f"]),
        *_qdq("a_f", "a", "ga"),
        helper.make_node("Mul", ["x", "three"], ["b_f"]),
        *_qdq("b_f", "b0", "gb"),
        helper.make_node("Shape", ["b0_q"], ["b_shape"]),
        helper.make_node("Transpose", ["b0"], ["b1_f"], perm=[0, 1, 3, 2]),
        *_qdq("b1_f", "b1", "gb1"),
        helper.make_node("Transpose", ["b1"], ["b2_f"], perm=[0, 1, 3, 2]),
        *_qdq("b2_f", "b", "gb2"),
        helper.make_node("Neg", ["x"], ["c_f"]),
        *_qdq("c_f", "c", "go"),
        helper.make_node("Concat", ["a", "b", "c"], ["y_f"], axis=1),
        *_qdq("y_f", "y", "go"),
    ]
    outputs = ["y", ("b_shape", TensorProto.INT64, [4])]
    if shared_reader:
        nodes.append(helper.make_node("Relu", ["a"], ["z"]))
        outputs.append("z")
    model = _model([(n, []) for n in nodes], outputs, 17)
    model.graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.5, np.float32), "half"),
            numpy_helper.from_array(np.array(3.0, np.float32), "three"),
            *_grids(ga=0.004, gb=0.03, gb1=0.03, gb2=0.03, go=0.05),
        ]
    )
    return model


def _grid_names(model, op_type="DequantizeLinear"):
    return {n.output[0]: n.input[1] for n in model.graph.node if n.op_type == op_type}


def test_concat_inputs_are_quantised_on_the_output_grid():
    model = _concat_model(shared_reader=False)
    x = np.random.default_rng(4).uniform(-2, 2, (1, 2, 5, 5)).astype(np.float32)
    before = _run(model, x)[0]
    assert concat_inputs_on_output_grid(model) == 1
    dq_grid = _grid_names(model)
    # Every Q/DQ from the concatenation back to the ops that computed its inputs: one grid.
    assert {dq_grid[t] for t in ("a", "b0", "b1", "b", "c", "y")} == {"go_s"}
    assert all(n.input[1] == "go_s" for n in model.graph.node if n.op_type == "QuantizeLinear")
    inits = {i.name for i in model.graph.initializer}
    assert not inits & {"ga_s", "gb_s", "gb1_s", "gb2_s"}  # the old grids are gone
    after = _run(model, x)[0]
    # Each value is now the output grid's nearest to the float value: no rounding to the
    # input's grid first, and no clipping to its narrower range (a: ±0.51, b: ±3.8).
    exact = np.concatenate([0.5 * x, 3 * x, -x], axis=1)
    on_grid = (np.clip(np.rint(exact / 0.05) + 128, 0, 255) - 128) * 0.05
    assert np.allclose(after, on_grid, rtol=0, atol=1e-6)
    assert not np.allclose(before, on_grid, rtol=0, atol=1e-6)
    assert np.array_equal(after[:, 4:], before[:, 4:])  # c was on that grid already
    assert concat_inputs_on_output_grid(model) == 0  # nothing left to move


def test_concat_inputs_read_elsewhere_keep_their_grid():
    model = _concat_model(shared_reader=True)
    assert concat_inputs_on_output_grid(model) == 1
    dq_grid = _grid_names(model)
    assert dq_grid["a"] == "ga_s"  # the Relu reads it too: left alone
    assert dq_grid["b"] == dq_grid["b0"] == "go_s"
    x = np.random.default_rng(5).uniform(-2, 2, (1, 2, 5, 5)).astype(np.float32)
    assert _run(model, x)[0].shape == (1, 6, 5, 5)

"""ONNX models built in code with onnx.helper (IR version 10: onnxruntime 1.31 rejects IR 14)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 10
OPSET = 17


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="modelyard-tests"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tiny_model(path: Path, factor: float = 2.0) -> Path:
    """x: FP32 [N,4] -> double = factor * x [N,4], total = sum over axis 1 [N]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    double = helper.make_tensor_value_info("double", TensorProto.FLOAT, ["N", 4])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N"])
    two = numpy_helper.from_array(np.array(factor, dtype=np.float32), "two")
    axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
    nodes = [
        helper.make_node("Mul", ["x", "two"], ["double"]),
        helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "tiny", [x], [double, total], initializer=[two, axes])
    return _save(graph, path)


def identity_model(path: Path, datatypes: Sequence[int]) -> Path:
    """One [N,2] input per ONNX element type, each copied to an output ``out_<i>``."""
    inputs, outputs, nodes = [], [], []
    for i, elem in enumerate(datatypes):
        inputs.append(helper.make_tensor_value_info(f"in_{i}", elem, ["N", 2]))
        outputs.append(helper.make_tensor_value_info(f"out_{i}", elem, ["N", 2]))
        nodes.append(helper.make_node("Identity", [f"in_{i}"], [f"out_{i}"]))
    return _save(helper.make_graph(nodes, "identity", inputs, outputs), path)


def fixed_model(path: Path) -> Path:
    """x: FP32 [1,4] (no batch dimension) -> y = x + 1."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    one = numpy_helper.from_array(np.ones((1, 4), dtype=np.float32), "one")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "fixed", [x], [y], [one]
    )
    return _save(graph, path)


def mlp_model(path: Path, sizes: Sequence[int], *, seed: int = 0) -> Path:
    """A ReLU MLP with layer widths ``sizes`` (the first is the input): ``input`` -> ``output``."""
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    previous = "input"
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        b = (rng.standard_normal(fan_out) * 0.01).astype(np.float32)
        weights += [
            numpy_helper.from_array(w, f"w{layer}"),
            numpy_helper.from_array(b, f"b{layer}"),
        ]
        last = layer == len(sizes) - 2
        gemm_out = "output" if last else f"h{layer}"
        nodes.append(helper.make_node("Gemm", [previous, f"w{layer}", f"b{layer}"], [gemm_out]))
        if not last:
            nodes.append(helper.make_node("Relu", [gemm_out], [f"r{layer}"]))
            previous = f"r{layer}"
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", sizes[0]])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", sizes[-1]])
    return _save(helper.make_graph(nodes, "mlp", [x], [y], initializer=weights), path)


def reshape_model(path: Path) -> Path:
    """x: FP32 [N,4] reshaped to a fixed [2,2]: runs at batch 1, fails at any other batch size."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])
    shape = numpy_helper.from_array(np.array([2, 2], dtype=np.int64), "shape")
    node = helper.make_node("Reshape", ["x", "shape"], ["y"])
    return _save(helper.make_graph([node], "reshape", [x], [y], [shape]), path)


def failing_model(path: Path) -> Path:
    """x: FP32 [N,4] -> y: FP32 [N,4], like ``tiny_model``, but every value of x is used as an
    index into a 2-element table: the zeros of warm-up pass (the pod becomes Ready), real
    inputs of 2 or more fail inside onnxruntime (a 500 for every such request)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    table = numpy_helper.from_array(np.array([1.0, 2.0], dtype=np.float32), "table")
    nodes = [
        helper.make_node("Cast", ["x"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "index"], ["y"], axis=0),
    ]
    return _save(helper.make_graph(nodes, "failing", [x], [y], initializer=[table]), path)


def slow_model(
    path: Path,
    *,
    width: int = 3072,
    hidden: int = 4,
    features: int = 4,
    outputs: int = 4,
    input_name: str = "x",
    output_name: str = "y",
    seed: int = 0,
) -> Path:
    """``input_name``: FP32 [N, features] -> ``output_name``: FP32 [N, outputs] through
    ``hidden`` ReLU layers of ``width``: the interface of a small model (``tiny_model``'s by
    default), at tens of milliseconds a row on one CPU."""
    sizes = (features, *([width] * hidden), outputs)
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    previous = input_name
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"w{layer}"))
        out = output_name if layer == len(sizes) - 2 else f"h{layer}"
        nodes.append(helper.make_node("MatMul", [previous, f"w{layer}"], [out]))
        if out != output_name:
            nodes.append(helper.make_node("Relu", [out], [f"r{layer}"]))
            previous = f"r{layer}"
    x = helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", features])
    y = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", outputs])
    return _save(helper.make_graph(nodes, "slow", [x], [y], initializer=weights), path)

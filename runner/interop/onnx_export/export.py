"""A built plan as an ONNX model: the same wiring, shapes and weights, the inference pass.

Inputs and outputs keep the config's names (``x``; ``siam.0`` for a head) with a symbolic
batch axis ``batch``; a masked output also gets ``NAME/mask`` (bool, 1 = kept), as
``outputs.npz`` does. Every layer that cannot be exported is listed in one ConfigError, by
config path, before anything is written.
"""

from __future__ import annotations

import onnx
from onnx import helper

from runner.errors import ConfigError, Problem
from runner.graph.nodes import Plan
from runner.graph.refs import Ref

# the emitters register themselves on import
from runner.interop.onnx_export import composites, core_layers, lambda_expr, merging  # noqa: F401
from runner.interop.onnx_export.graph import OPSET, OnnxGraph
from runner.interop.onnx_export.registry import NotExportable

BATCH = "batch"  # the symbolic batch dimension of every input and output


def to_onnx(plan: Plan) -> onnx.ModelProto:
    """The built ``plan`` as a checked ONNX model (``onnx.checker``, full check)."""
    g = OnnxGraph(plan.dtype)
    values: dict[Ref, tuple[str, str | None]] = {Ref(name): (name, None) for name in plan.inputs}
    problems: list[Problem] = []
    for node in plan.nodes.values():
        if any(ref not in values for ref in node.inputs):
            continue  # it reads a layer that was refused: already reported
        if node.layer.multi_input:
            x = [values[ref][0] for ref in node.inputs]
            mask = [values[ref][1] for ref in node.inputs]
        else:
            x, mask = values[node.inputs[0]]
        try:
            y, out_mask = g.emit(node.layer, f"{node.name}/", node.path, x, mask, node.in_shape)
        except NotExportable as exc:
            problems.append(Problem(exc.path or node.path, f"cannot export: {exc.message}"))
            continue
        heads = zip(node.outputs, y, out_mask) if node.heads else [(node.outputs[0], y, out_mask)]
        for ref, value, value_mask in heads:
            values[ref] = (value, value_mask)
    if problems:
        raise ConfigError(problems)
    inputs = [
        helper.make_tensor_value_info(name, g.elem_type, [BATCH, *node.shape])
        for name, node in plan.inputs.items()
    ]
    outputs = []
    for ref in plan.outputs:
        value, mask = values[ref]
        shape = [BATCH, *plan.shape_of(ref)]
        outputs.append(_output(g, value, str(ref), g.elem_type, shape))
        if mask is not None:
            outputs.append(_output(g, mask, f"{ref}/mask", onnx.TensorProto.BOOL, shape[:-1]))
    graph = helper.make_graph(
        g.nodes, "keras_layer_runner", inputs, outputs, initializer=list(g.initializers.values())
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="keras-layer-runner",
        # the oldest IR that holds this opset, so older runtimes load the file too
        ir_version=helper.find_min_ir_version_for([helper.make_opsetid("", OPSET)]),
    )
    onnx.checker.check_model(model, full_check=True)
    return model


def _output(
    g: OnnxGraph, value: str, name: str, elem_type: int, shape: list
) -> onnx.ValueInfoProto:
    """A graph output named ``name``: an Identity of ``value`` (a graph input is listed as is)."""
    if value != name:
        g.nodes.append(helper.make_node("Identity", [value], [name]))
    return helper.make_tensor_value_info(name, elem_type, shape)

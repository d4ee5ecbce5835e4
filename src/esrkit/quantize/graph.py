"""Which operations of an SR graph stay in fp32: the rule :mod:`esrkit.quantize.recipe` hands to NNCF.

The rule is structural, so it applies to any esrkit model in either runtime's graph (the OpenVINO IR and the ONNX
file name their nodes differently, and OpenVINO splits a convolution's bias into an ``Add``):

* **element-wise operations** (``Add``, ``Multiply``, ``Divide``, ``Sigmoid``, ``MaxPool``, resizing) are never
  quantized. Quantizing them quantizes the residual sums and ESA's gate ``x·sigmoid(g)`` themselves, and it was
  the main loss of naive PTQ (RLFN-NTIRE Set5 −8.2 dB with them, −1.0 dB without);
* **convolutions reading pixels** (the first one, after the ``×img_range`` scaling);
* **convolutions writing the pixel-shuffle head** (their output becomes the SR image after ``DepthToSpace``);
* **convolutions reading a residual sum** (an ``Add`` of two computed tensors: RLFB's 1×1 ``c5`` after
  ``out + x``, the head after the long skip, ESA's ``conv4``);
* **convolutions writing the long skip**: whose output is added to another tensor right before the head.

These are the layers the one-layer-at-a-time sensitivity scan ranks worst (see :mod:`esrkit.quantize.recipe`),
and together they are a small share of the multiply-adds (the head and the tail of a 46-channel RLFN, the 1×1
convs): the 3×3 convolutions inside the blocks, the bulk of the work, run in int8.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# Element-wise operation types kept in fp32, spelled as each runtime's graph spells them.
ELEMENTWISE = {"openvino": ["Add", "Multiply", "Divide", "Sigmoid", "MaxPool", "Interpolate"],
               "onnx": ["Add", "Mul", "Div", "Sigmoid", "MaxPool", "Resize"]}

_CONV = {"Convolution", "Conv"}
_SCALE = {"Multiply", "Mul", "Divide", "Div", "Convert"}  # ops that only rescale a tensor by a constant
_PIXEL_SHUFFLE = {"DepthToSpace"}


@dataclass
class Node:
    """One operation of a graph, runtime-neutral: name, type and producers (None for a constant input)."""

    name: str
    kind: str
    inputs: list[str | None] = field(default_factory=list)


def _consumers(nodes: dict[str, Node]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes.values():
        for src in node.inputs:
            if src is not None and src in out:
                out[src].append(node.name)
    return out


def _is_sum(node: Node) -> bool:
    """An ``Add`` of two computed tensors (a residual sum), not a bias ``Add`` with a constant."""
    return node.kind == "Add" and sum(src is not None for src in node.inputs) >= 2


def _skip_bias(name: str, nodes: dict[str, Node], consumers: dict[str, list[str]]) -> list[str]:
    """The consumers of a convolution's output, looking through OpenVINO's separate bias ``Add``."""
    users = consumers[name]
    if len(users) == 1 and nodes[users[0]].kind == "Add" and not _is_sum(nodes[users[0]]):
        return consumers[users[0]]
    return users


def fp32_convolutions(graph: Iterable[Node]) -> list[str]:
    """Names of the convolutions that stay in fp32 under the rule of the module docstring, in graph order."""
    nodes = {n.name: n for n in graph}
    consumers = _consumers(nodes)
    convs = [n for n in nodes.values() if n.kind in _CONV]
    keep: set[str] = set()
    head: set[str] = set()
    for conv in convs:
        if any(nodes[u].kind in _PIXEL_SHUFFLE for u in _skip_bias(conv.name, nodes, consumers)):
            head.add(conv.name)
    for conv in convs:
        src = conv.inputs[0] if conv.inputs else None
        while src is not None and nodes[src].kind in _SCALE:
            src = nodes[src].inputs[0]
        if src is None or nodes[src].kind == "Parameter":
            keep.add(conv.name)  # reads pixels
        elif _is_sum(nodes[src]):
            keep.add(conv.name)  # reads a residual sum
        for user in _skip_bias(conv.name, nodes, consumers):
            if _is_sum(nodes[user]) and any(h in consumers[user] for h in head):
                keep.add(conv.name)  # writes the long skip just before the head
    keep |= head
    return [c.name for c in convs if c.name in keep]


def openvino_nodes(model: object) -> list[Node]:
    """The runtime-neutral graph of an ``openvino.Model``."""
    nodes: list[Node] = []
    # Constants, shapes, and what is computed from them only (OpenVINO reshapes an ONNX bias by the rank of the
    # convolution's output: ShapeOf → Subtract → Broadcast → Concat → Reshape, a constant for data-flow purposes)
    constant: set[str] = set()
    for op in model.get_ordered_ops():  # type: ignore[attr-defined]
        name = op.get_friendly_name()
        sources = [value.get_node().get_friendly_name() for value in op.input_values()]
        if op.get_type_name() in ("Constant", "ShapeOf") or (sources and all(s in constant for s in sources)):
            constant.add(name)
            continue
        nodes.append(Node(name, op.get_type_name(), [None if s in constant else s for s in sources]))
    return nodes


def onnx_nodes(proto: object) -> list[Node]:
    """The runtime-neutral graph of an ``onnx.ModelProto`` (graph inputs become ``Parameter`` nodes)."""
    graph = proto.graph  # type: ignore[attr-defined]
    constants = {i.name for i in graph.initializer}
    for n in graph.node:  # constants, shapes, and what is computed from them only
        if n.op_type in ("Constant", "Shape") or (n.input and all(x in constants for x in n.input if x)):
            constants.update(n.output)
    producer: dict[str, str] = {}
    nodes = [Node(i.name, "Parameter") for i in graph.input if i.name not in constants]
    for i in graph.input:
        producer[i.name] = i.name
    for n in graph.node:
        for o in n.output:
            producer[o] = n.name
    for n in graph.node:
        if all(o in constants for o in n.output):
            continue
        nodes.append(Node(n.name, n.op_type, [None if (not x or x in constants) else producer.get(x) for x in n.input]))
    return nodes

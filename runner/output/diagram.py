"""The model graph as a Mermaid flowchart (``graph.mmd`` in the run folder).

Inputs are parallelograms, layers boxes labelled ``name: Type (None, ...)``, composites
(AutoEncoder, Siamese) subgraphs holding their inner layers, outputs drawn with a thick border.
An edge from one output of a multi-output layer is labelled with its index (``.0``).
GitHub, GitLab and most Markdown viewers render the file; https://mermaid.live does too.
"""

from __future__ import annotations

from runner.graph.plan import Plan


def _text(s: str) -> str:
    """Mermaid label text: quotes and angle brackets as entities."""
    return s.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _shape(shape: tuple, heads: int = 0) -> str:
    text = str((None, *shape))
    return f"{heads} x {text}" if heads else text


def mermaid(plan: Plan) -> str:
    lines = ["flowchart TD"]
    ids: dict[str, str] = {}
    for i, (name, node) in enumerate(plan.inputs.items()):
        ids[name] = f"in{i}"
        lines.append(f'  in{i}[/"{_text(name)}: Input {_shape(node.shape)}"/]')
    for j, node in enumerate(plan.nodes.values()):
        nid = ids[node.name] = f"n{j}"
        label = f"{node.name}: {node.layer.spec.type} {_shape(node.shape, node.heads)}"
        if node.masked:
            label += " masked"
        rows = node.layer.summary_rows(node.in_shape)
        if not rows:
            lines.append(f'  {nid}["{_text(label)}"]')
        else:
            lines.append(f'  subgraph {nid}["{_text(label)}"]')
            previous = None
            for k, (key, kind, reads, shape, _) in enumerate(rows):
                if "/" in key and key.rsplit("/", 1)[0] in {r[0] for r in rows[:k]}:
                    continue  # a grandchild: its composite parent stands for it
                lines.append(f'    {nid}_{k}["{_text(f"{key}: {kind} {_shape(shape)}")}"]')
                if previous is not None and "(not run)" not in reads:
                    lines.append(f"    {previous} --> {nid}_{k}")
                previous = f"{nid}_{k}"
            lines.append("  end")
        for ref in node.inputs:
            arrow = "-->" if ref.head is None else f"-->|.{ref.head}|"
            lines.append(f"  {ids[ref.node]} {arrow} {nid}")
    outputs = sorted({ids[o.node] for o in plan.outputs})
    lines.append("  classDef output stroke-width:3px")
    lines.append(f"  class {','.join(outputs)} output")
    return "\n".join(lines) + "\n"

"""The model summary table: layer, type, inputs, output shape, mask, parameters."""

from __future__ import annotations

from runner.graph.plan import Plan


def summary_rows(plan: Plan) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for name, node in plan.inputs.items():
        rows.append((name, "Input", "", str((None, *node.shape)), "", "0"))
    for node in plan.nodes.values():
        shape = str((None, *node.shape))
        if node.heads:  # several outputs of the same shape: "<name>.0", "<name>.1", ...
            shape = f"{node.heads} x {shape}"
        rows.append(
            (
                node.name,
                node.layer.spec.type,
                ", ".join(node.inputs),
                shape,
                "yes" if node.masked else "",
                f"{node.n_params:,}",
            )
        )
        rows += _inner_rows(plan, node)
    return rows


def _inner_rows(plan: Plan, node) -> list[tuple[str, str, str, str, str, str]]:
    """Rows for the layers inside a composite (AutoEncoder, Siamese), indented under it;
    their parameters are already counted in the composite's row."""
    rows = node.layer.summary_rows(node.in_shape)
    return [
        (f"  {node.name}/{key}", kind, reads, str((None, *shape)), "", f"({n:,})")
        for key, kind, reads, shape, n in rows
    ]


def summary_text(plan: Plan) -> str:
    header = ("layer", "type", "inputs", "output shape", "mask", "params")
    rows = [header, *summary_rows(plan)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    text = [_fmt(header, widths), line] + [_fmt(r, widths) for r in rows[1:]] + [line]
    total = sum(n.n_params for n in plan.nodes.values())
    text.append(
        f"total params: {total:,}   outputs: {', '.join(plan.outputs)}   "
        f"rows: {plan.rows:,}   estimated memory: {plan.memory_bytes / 2**20:,.1f} MB"
    )
    return "\n".join(text)


def _fmt(row, widths) -> str:
    return "  ".join(
        c.ljust(w) if i < 3 else c.rjust(w) if i == 5 else c.ljust(w)
        for i, (c, w) in enumerate(zip(row, widths))
    ).rstrip()

"""The neutral description -> our model config (inputs, layers, outputs) and weight keys.

Two passes. First every layer is checked for a counterpart, so that *all* layers we cannot
map are listed together, each with its path in the source. Then the calls are mapped in
order, each output's per-sample shape computed by our own layer classes (the same
``output_shape`` the plan uses), which picks Dense or TimeDistributedDense and turns Keras'
axes into ours. A layer called several times (a shared layer) becomes a Siamese whose heads
(``name.0``, ``name.1``...) feed what each call fed.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

import layers as _layers  # noqa: F401 (importing registers every layer)
from layers import registry
from layers.base import PlanError
from runner.errors import ConfigError, Problem
from runner.graph.refs import Ref, parse_ref
from runner.interop.keras_import.activations import map_activation
from runner.interop.keras_import.model import KCall, KLayer, KModel, has_bias

ELEMENTWISE = {"Add": "sum", "Multiply": "mul", "Average": "ave", "Maximum": "max"}
LEGACY_MODES = ("sum", "mul", "concat", "ave", "dot", "cos", "max")
PASS_THROUGH = ("Masking", "Dropout", "Reshape", "Permute", "Flatten", "RepeatVector")
MASK_OPS = ("NotEqual", "Any")  # Keras 3 writes Masking's mask as these ops
OURS_HINT = "docs/interop.md maps the Keras layers we have"
LAMBDA_HINT = (
    "a Lambda holds Python code (bytecode or a function name) and is never imported or run; "
    "write it as our Lambda layer, an expression over x such as "
    '{type: Lambda, function: "x * x"} (layer-runner layers Lambda; docs/interop.md)'
)


@dataclass
class Ours:
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    params: list[tuple[str, KLayer]] = field(default_factory=list)  # weight prefix, layer
    notes: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)


# ---- pass 1: is there a counterpart? ------------------------------------------------------
def unmappable(model: KModel) -> list[Problem]:
    problems = []
    for layer in model.layers.values():
        why = _why_not(layer, model.version)
        if why:
            problems.append(Problem(layer.path, why))
    return problems


def _why_not(layer: KLayer, version: int) -> str | None:
    kind, c, module = layer.kind, layer.config, layer.module
    if kind in ("Lambda", "MaskedLambda", "LambdaMerge"):
        return f"{kind}: {LAMBDA_HINT}"
    if module and not module.startswith("keras"):
        return f"{kind} is a custom object (module {module}): its code is never imported"
    if module and module.startswith("keras.src.ops"):
        if kind in MASK_OPS:
            return None  # checked where it is used: only Masking's own mask is accepted
        return f"the operation {kind} (keras.ops) has no counterpart here"
    if kind in ("Dense", "TimeDistributedDense"):
        return _activation_problem(layer, version)
    if kind == "TimeDistributed":
        inner = layer.children.get("layer") or []
        if len(inner) != 1 or inner[0].kind != "Dense":
            what = inner[0].kind if inner else "?"
            return f"TimeDistributed({what}): only TimeDistributed(Dense) has a counterpart"
        return _activation_problem(inner[0], version)
    if kind == "Activation":
        return _activation_problem(layer, version)
    if kind in ELEMENTWISE or kind in ("Concatenate", "Dot", "InputLayer"):
        return None
    if kind == "Merge":
        if c.get("mode_type") in ("lambda", "function") or not isinstance(c.get("mode"), str):
            return f"Merge with a Python function as mode: {LAMBDA_HINT}"
        if c.get("mode") not in LEGACY_MODES:
            return f"Merge mode {c.get('mode')!r} has no counterpart (ours: {LEGACY_MODES})"
        return None
    if kind == "GlobalAveragePooling1D":
        if c.get("data_format", "channels_last") != "channels_last":
            return (
                "GlobalAveragePooling1D with data_format channels_first averages over the "
                "last axis; ours (TimeDistributedMerge ave) averages over time"
            )
        if c.get("keepdims"):
            return "GlobalAveragePooling1D with keepdims=True keeps the time axis; ours drops it"
        return None
    if kind == "Dropout" and c.get("noise_shape") is not None:
        return "Dropout with a noise_shape drops whole slices; ours drops single units"
    if kind == "Flatten" and c.get("data_format") == "channels_first":
        return "Flatten with data_format channels_first reorders axes first; ours does not"
    if kind in PASS_THROUGH or kind in ("TimeDistributedMerge", "ActivityRegularization"):
        return None
    if kind in ("AutoEncoder", "Siamese"):
        kids = [k for group in layer.children.values() for k in group]
        for kid in kids:
            why = _why_not(kid, version)
            if why:
                return f"{kind} holds {kid.kind} {kid.name!r}: {why}"
        return None
    if kind in ("Sequential", "Model", "Functional"):
        return (
            f"a model used as a layer ({kind} {layer.name!r}) is not imported: build the outer "
            "model from the inner one's layers (a shared inner model becomes a Siamese only "
            "layer by layer)"
        )
    return f"{kind} is not a layer we implement ({OURS_HINT})"


def _activation_problem(layer: KLayer, version: int) -> str | None:
    mapped = map_activation(layer.config.get("activation", "linear"), version)
    return f"{layer.kind}: {mapped.problem}" if mapped.problem else None


# ---- pass 2: map the calls ------------------------------------------------------------------
class _Mapper:
    def __init__(self, model: KModel, shapes: dict[str, tuple[int, ...]], shown: str) -> None:
        self.model = model
        self.shown = shown
        self.out = Ours()
        self.problems: list[Problem] = []
        self.refs: dict[tuple[str, int, int], tuple[str, tuple[int, ...]]] = {}
        self.names: set[str] = set()
        self.masked: dict[tuple[str, int], float] = {}  # tensors a Masking read, and its value
        self.ops: dict[tuple[str, int], KCall] = {}
        self.shared: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        self.shared_names: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        for call in model.calls:
            self.counts[call.layer.name] = self.counts.get(call.layer.name, 0) + 1
        for name, shape in shapes.items():
            ours = self.name_for(name)
            self.out.inputs[ours] = {"shape": list(shape)}
            self.refs[(name, 0, 0)] = (ours, shape)

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, self.shown))

    def name_for(self, keras_name: str) -> str:
        name = re.sub(r"\W", "_", keras_name)[:90] or "layer"
        if not re.match(r"[A-Za-z_]", name) or keyword.iskeyword(name):
            name = f"l_{name}"
        base, k = name, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        if name != keras_name:
            self.out.renamed[keras_name] = name
        return name

    # -- helpers ----------------------------------------------------------------------------
    def shape_of(self, spec: dict[str, Any], in_shapes: Any, path: str) -> tuple[int, ...] | None:
        """Our layer's output shape for ``spec`` (a PlanError is a problem at ``path``)."""
        try:
            cls = registry.layer_class(spec["type"])
            layer = cls(cls.Spec.model_validate(spec), "import")
            return tuple(layer.output_shape(in_shapes))
        except PlanError as exc:
            self.problem(path, str(exc))
        except ValueError as exc:  # pydantic: a parameter ours rejects
            self.problem(path, _first_error(exc))
        return None

    def emit(self, name: str, spec: dict[str, Any], inputs: list[str]) -> None:
        self.out.layers[name] = {**spec, "inputs": inputs}

    # -- the calls --------------------------------------------------------------------------
    def run(self) -> Ours:
        for call in self.model.calls:
            if call.layer.kind in MASK_OPS and (call.layer.module or "").startswith("keras.src"):
                self.ops[(call.layer.name, call.index)] = call
                continue
            sources = [self.refs.get((r.layer, r.call, r.tensor)) for r in call.inputs]
            if any(s is None for s in sources):
                missing = [r.layer for r, s in zip(call.inputs, sources) if s is None]
                self.problem(call.layer.path, f"reads {missing}, which could not be mapped")
                continue
            self.check_masks(call)
            refs = [s[0] for s in sources]
            shapes = [s[1] for s in sources]
            if self.counts[call.layer.name] > 1:
                self.shared_call(call, refs, shapes)
                continue
            result = self.one(call.layer, refs, shapes)
            if result is not None:  # (a legacy Siamese without merge set its heads already)
                self.refs.setdefault((call.layer.name, call.index, 0), result)
        self.finish_shared()
        for ref in self.model.outputs:
            found = self.refs.get((ref.layer, ref.call, ref.tensor))
            if found is not None:
                self.out.outputs.append(found[0])
        for name in self.shared_names.values():
            self.fold_merge(name)
        return self.out

    def check_masks(self, call: KCall) -> None:
        """Keras 3 passes masks as tensors: accept only Masking's own (any(x != v, -1) of a
        tensor a Masking layer with mask_value v reads), which our masks carry already."""
        if call.layer.kind == "Masking":
            for r in call.inputs:
                self.masked[(r.layer, r.call)] = float(call.layer.config.get("mask_value", 0.0))
        for ref in call.masks:
            any_call = self.ops.get((ref.layer, ref.call))
            ne = None
            if any_call is not None and any_call.layer.kind == "Any" and any_call.inputs:
                axis = any_call.layer.config.get("axis", -1)
                src = any_call.inputs[0]
                if axis == -1 and not any_call.layer.config.get("keepdims"):
                    ne = self.ops.get((src.layer, src.call))
            ok = (
                ne is not None
                and ne.layer.kind == "NotEqual"
                and len(ne.inputs) == 1
                and len(ne.constants) == 1
                and self.masked.get((ne.inputs[0].layer, ne.inputs[0].call)) == ne.constants[0]
            )
            if not ok:
                self.problem(
                    call.layer.path,
                    "its mask is computed by other operations than a Masking layer; only "
                    "Masking's mask travels here (remove the explicit mask)",
                )

    def one(self, layer: KLayer, refs: list[str], shapes: list[tuple[int, ...]]):
        """Map one call of an unshared layer: (our output ref, its shape) or None."""
        kind = layer.kind
        if kind in ("AutoEncoder",):
            return self.autoencoder(layer, refs, shapes)
        if kind == "Siamese":
            return self.legacy_siamese(layer, refs, shapes)
        if kind == "Merge" or kind in ELEMENTWISE or kind in ("Concatenate", "Dot"):
            spec = self.merge_spec(layer, shapes)
            if spec is None:
                return None
            return self.place(layer, spec, refs, shapes)
        if len(refs) != 1:
            self.problem(layer.path, f"{kind} takes one input here, found {len(refs)}")
            return None
        specs = self.single(layer, shapes[0])
        if specs is None:
            return None
        ref, shape = refs[0], shapes[0]
        for i, (suffix, spec, bound) in enumerate(specs):
            name = self.name_for(layer.name + suffix) if i else self.name_for(layer.name)
            out = self.shape_of(spec, shape, layer.path)
            if out is None:
                return None
            self.emit(name, spec, [ref])
            if bound is not None:
                self.out.params.append((name, bound))
            ref, shape = name, out
        return ref, shape

    def place(self, layer: KLayer, spec: dict[str, Any], refs: list[str], shapes):
        out = self.shape_of(spec, shapes, layer.path)
        if out is None:
            return None
        name = self.name_for(layer.name)
        self.emit(name, spec, refs)
        return name, out

    def single(self, layer: KLayer, shape: tuple[int, ...]):
        """[(name suffix, our spec, layer whose weights it takes)] for a one-input layer."""
        kind, c, v = layer.kind, layer.config, self.model.version
        if kind in ("Dense", "TimeDistributedDense", "TimeDistributed"):
            dense = layer.children["layer"][0] if kind == "TimeDistributed" else layer
            ours = "TimeDistributedDense" if kind != "Dense" or len(shape) == 2 else "Dense"
            if kind == "TimeDistributed" and len(shape) != 2:
                self.problem(layer.path, f"TimeDistributed on per-sample shape {shape}")
                return None
            return self.dense(dense, ours, bound=dense)
        if kind == "Activation":
            return self.activation(layer, c.get("activation"), None, v)
        if kind == "Masking":
            return [("", {"type": "Masking", "mask_value": float(c.get("mask_value", 0.0))}, None)]
        if kind == "Dropout":
            p = c.get("rate", c.get("p", 0.0))
            return [("", {"type": "Dropout", "p": float(p)}, None)]
        if kind == "Reshape":
            dims = c.get("target_shape", c.get("dims"))
            return [("", {"type": "Reshape", "dims": list(dims or [])}, None)]
        if kind == "Permute":
            return [("", {"type": "Permute", "dims": list(c.get("dims") or [])}, None)]
        if kind == "Flatten":
            return [("", {"type": "Flatten"}, None)]
        if kind == "RepeatVector":
            return [("", {"type": "RepeatVector", "n": int(c.get("n", 1))}, None)]
        if kind == "ActivityRegularization":
            spec = {"type": "ActivityRegularization"}
            spec.update({k: float(c[k]) for k in ("l1", "l2") if c.get(k)})
            return [("", spec, None)]
        if kind == "GlobalAveragePooling1D":
            return [("", {"type": "TimeDistributedMerge", "mode": "ave"}, None)]
        if kind == "TimeDistributedMerge":
            return [("", {"type": "TimeDistributedMerge", "mode": c.get("mode", "sum")}, None)]
        self.problem(layer.path, f"{kind} is not a layer we implement ({OURS_HINT})")
        return None

    def dense(self, layer: KLayer, ours: str, bound: KLayer | None):
        c = layer.config
        units = c.get("units", c.get("output_dim"))
        spec: dict[str, Any] = {"type": ours, "output_dim": units}
        for theirs, mine in (
            ("kernel_regularizer", "W_regularizer"),
            ("W_regularizer", "W_regularizer"),
            ("bias_regularizer", "b_regularizer"),
            ("b_regularizer", "b_regularizer"),
            ("activity_regularizer", "activity_regularizer"),
        ):
            reg = _regularizer(c.get(theirs))
            if reg is False:
                self.problem(layer.path, f"{theirs} {c.get(theirs)!r} has no counterpart")
            elif reg:
                spec[mine] = reg
        if not has_bias(layer):
            self.out.notes.append(
                f"{layer.name}: Keras had no bias; b is written as zeros (ours always has one)"
            )
        steps = self.activation(layer, c.get("activation"), spec, self.model.version)
        if steps is None:
            return None
        first = steps[0]
        return [(first[0], first[1], bound), *steps[1:]]

    def activation(self, layer: KLayer, value: Any, spec: dict[str, Any] | None, version: int):
        """``spec`` with its activation (or an Activation layer when ``spec`` is None); a
        formula only an expression can give becomes a Lambda after it."""
        mapped = map_activation(value, version)
        if mapped.problem:
            self.problem(layer.path, mapped.problem)
            return None
        if mapped.ours is not None:
            if spec is None:
                return [("", {"type": "Activation", "activation": mapped.ours}, None)]
            return [("", {**spec, "activation": mapped.ours}, None)]
        lam = {"type": "Lambda", "function": mapped.expression}
        self.out.notes.append(
            f"{layer.name}: Keras {version}'s {value} is {mapped.expression} (a Lambda)"
        )
        if spec is None:
            return [("", lam, None)]
        return [("", {**spec, "activation": "linear"}, None), ("_activation", lam, None)]

    def merge_spec(self, layer: KLayer, shapes: list[tuple[int, ...]]) -> dict[str, Any] | None:
        kind, c = layer.kind, layer.config
        if kind in ELEMENTWISE:
            return {"type": "Merge", "mode": ELEMENTWISE[kind]}
        if kind == "Concatenate":
            return {"type": "Merge", "mode": "concat", "concat_axis": int(c.get("axis", -1))}
        if kind == "Dot":
            axes = _dot_axes(c.get("axes", -1), shapes)
            if axes is None:
                self.problem(layer.path, f"Dot axes {c.get('axes')!r} do not fit {shapes}")
                return None
            mode = "cos" if c.get("normalize") else "dot"
            return {"type": "Merge", "mode": mode, "dot_axes": axes}
        mode = c.get("mode", "sum")
        spec = {"type": "Merge", "mode": mode, "concat_axis": int(c.get("concat_axis", -1))}
        if mode in ("dot", "cos"):
            dot_axes = c.get("dot_axes", -1)
            if self.model.version >= 1:  # Keras 1: an int is the same axis on both inputs
                dot_axes = _dot_axes(dot_axes, shapes)
                if dot_axes is None:
                    self.problem(layer.path, f"dot_axes {c.get('dot_axes')!r} do not fit {shapes}")
                    return None
            spec["dot_axes"] = dot_axes
        return spec

    def autoencoder(self, layer: KLayer, refs: list[str], shapes):
        parts: dict[str, dict[str, Any]] = {}
        bound: list[tuple[str, KLayer]] = []
        name = self.name_for(layer.name)
        shape = shapes[0]
        for part in ("encoder", "decoder"):
            parts[part] = {}
            for kid in layer.children.get(part, []):
                specs = self.single(kid, shape)
                if specs is None:
                    return None
                for suffix, spec, weights_of in specs:
                    kid_name = re.sub(r"\W", "_", kid.name + suffix)
                    parts[part][kid_name] = spec
                    shape = self.shape_of(spec, shape, kid.path)
                    if shape is None:
                        return None
                    if weights_of is not None:
                        bound.append((f"{name}/{part}/{kid_name}", weights_of))
        spec = {
            "type": "AutoEncoder",
            "encoder": parts["encoder"],
            "decoder": parts["decoder"],
            "output_reconstruction": bool(layer.config.get("output_reconstruction", True)),
        }
        out = self.shape_of(spec, shapes[0], layer.path)
        if out is None:
            return None
        self.emit(name, spec, refs)
        self.out.params += bound
        return name, out

    def inner_spec(self, inner: KLayer, shape: tuple[int, ...], path: str):
        specs = self.single(inner, shape)
        if specs is None:
            return None
        if len(specs) != 1:
            self.problem(path, "a shared layer whose activation needs a Lambda after it")
            return None
        return specs[0][1], specs[0][2]

    def legacy_siamese(self, layer: KLayer, refs: list[str], shapes):
        inner = (layer.children.get("layer") or [None])[0]
        if inner is None:
            self.problem(layer.path, "a Siamese without its shared layer")
            return None
        found = self.inner_spec(inner, shapes[0], layer.path)
        if found is None:
            return None
        inner_spec, weights_of = found
        c = layer.config
        spec = {
            "type": "Siamese",
            "layer": inner_spec,
            "merge_mode": c.get("merge_mode") or "none",
            "concat_axis": int(c.get("concat_axis", 1)),
            "dot_axes": c.get("dot_axes", -1),
        }
        out = self.shape_of(spec, shapes, layer.path)
        if out is None:
            return None
        name = self.name_for(layer.name)
        self.emit(name, spec, refs)
        if weights_of is not None:
            self.out.params.append((f"{name}/layer", weights_of))
        if spec["merge_mode"] == "none":
            for k in range(len(refs)):
                self.refs[(layer.name, 0, k)] = (str(Ref(name, k)), out)
        return name, out

    # -- shared layers (Keras 1-3): one Siamese, merge_mode none ------------------------------
    def shared_call(self, call: KCall, refs: list[str], shapes) -> None:
        if len(refs) != 1:
            self.problem(call.layer.path, "a shared layer taking several inputs per call")
            return
        if call.layer.name not in self.shared_names:
            self.shared_names[call.layer.name] = self.name_for(call.layer.name)
        self.shared.setdefault(call.layer.name, []).append((refs[0], shapes[0]))
        k = len(self.shared[call.layer.name]) - 1
        found = self.inner_spec(call.layer, shapes[0], call.layer.path)
        if found is None:
            return
        out = self.shape_of(found[0], shapes[0], call.layer.path)
        if out is not None:
            name = self.shared_names[call.layer.name]
            self.refs[(call.layer.name, call.index, 0)] = (str(Ref(name, k)), out)

    def finish_shared(self) -> None:
        for keras_name, calls in self.shared.items():
            layer = self.model.layers[keras_name]
            if len({s for _, s in calls}) != 1:
                self.problem(
                    layer.path,
                    f"a shared layer called on different shapes {[s for _, s in calls]}: "
                    "Siamese needs one shape",
                )
                continue
            found = self.inner_spec(layer, calls[0][1], layer.path)
            if found is None:
                continue
            name = self.shared_names[keras_name]
            self.emit(
                name,
                {"type": "Siamese", "layer": found[0], "merge_mode": "none"},
                [r for r, _ in calls],
            )
            if found[1] is not None:
                self.out.params.append((f"{name}/layer", found[1]))
            self.out.notes.append(f"{name}: one layer shared by {len(calls)} calls (Siamese)")
        self.out.layers = _ordered(self.out.layers, set(self.out.inputs), self.problem)

    def fold_merge(self, name: str) -> None:
        """A shared layer whose heads go, all and in order, into one merge and nowhere else
        is a legacy Siamese with that merge mode: one layer instead of two."""
        spec = self.out.layers.get(name)
        if spec is None or spec.get("merge_mode") != "none":
            return
        heads = [str(Ref(name, k)) for k in range(len(spec["inputs"]))]
        readers = [n for n, s in self.out.layers.items() if set(heads) & set(s["inputs"])]
        if len(readers) != 1 or set(heads) & set(self.out.outputs):
            return
        merge_name = readers[0]
        merge = self.out.layers[merge_name]
        if merge["type"] != "Merge" or merge["inputs"] != heads:
            return
        folded = {
            "type": "Siamese",
            "layer": spec["layer"],
            "merge_mode": merge["mode"],
            "concat_axis": merge.get("concat_axis", -1),  # Merge's default, not Siamese's
            "dot_axes": merge.get("dot_axes", -1),
            "inputs": spec["inputs"],
        }
        self.out.layers = {
            n: (folded if n == merge_name else s) for n, s in self.out.layers.items() if n != name
        }
        self.out.params = [
            (f"{merge_name}/layer" if p == f"{name}/layer" else p, k) for p, k in self.out.params
        ]
        self.out.notes = [
            f"{merge_name}: the shared layer {name!r} and this {merge['mode']} merge (Siamese)"
            if note.startswith(f"{name}: one layer shared")
            else note
            for note in self.out.notes
        ]


def _ordered(specs: dict[str, dict[str, Any]], inputs: set[str], problem) -> dict[str, Any]:
    """Layers in an order where each reads only inputs and layers before it (a Siamese sits
    where all its inputs exist; what reads its heads comes after it)."""
    done = set(inputs)
    out: dict[str, Any] = {}
    waiting = dict(specs)
    while waiting:
        ready = [
            n for n, s in waiting.items() if all(parse_ref(r).node in done for r in s["inputs"])
        ]
        if not ready:
            for n in waiting:
                problem(
                    f"layers.{n}", "a shared layer applied to its own output: no Siamese can say it"
                )
            return out
        for n in ready:
            out[n] = waiting.pop(n)
            done.add(n)
    return out


def _dot_axes(axes: Any, shapes: list[tuple[int, ...]]) -> list[list[int]] | None:
    """Keras 1-3 Dot/Merge axes (an int: the same full-tensor axis of both; negative counted
    from the end) -> our explicit pairs [[a], [b]]."""
    if len(shapes) != 2:
        return None
    ranks = [len(s) + 1 for s in shapes]  # full rank, batch included
    if isinstance(axes, int):
        pair = [axes % ranks[0], axes % ranks[1]] if axes < 0 else [axes, axes]
    elif isinstance(axes, list) and len(axes) == 2 and all(isinstance(a, int) for a in axes):
        pair = [a % r if a < 0 else a for a, r in zip(axes, ranks)]
    else:
        return None
    if any(not 1 <= a < r for a, r in zip(pair, ranks)):
        return None
    return [[pair[0]], [pair[1]]]


def _regularizer(value: Any) -> dict[str, float] | None | bool:
    """{l1, l2} from any version's regularizer config; None when absent; False when unknown."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return False
    name = value.get("class_name") or value.get("name")
    params = value.get("config") if isinstance(value.get("config"), dict) else value
    if name not in ("L1L2", "L1", "L2", "WeightRegularizer", "ActivityRegularizer"):
        return False
    out = {k: float(params[k]) for k in ("l1", "l2") if params.get(k)}
    return out or None


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc)


def to_ours(model: KModel, shapes: dict[str, tuple[int, ...]], shown: str) -> Ours:
    problems = unmappable(model)
    if problems:
        raise ConfigError([Problem(p.path, p.message, shown) for p in problems])
    mapper = _Mapper(model, shapes, shown)
    out = mapper.run()
    if mapper.problems:
        raise ConfigError(mapper.problems)
    return out

"""``layer-runner import-keras SRC [WEIGHTS] --out conf/model/NAME.yaml``.

Exit code 0 when both files were written, 2 with one message listing every problem (each with
its path in the source file) when nothing was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runner.errors import UserError, printable

EXAMPLE = """examples:
  layer-runner import-keras model.json weights.h5 --out conf/model/mine.yaml
  layer-runner import-keras model.keras --out conf/model/mine.yaml
  layer-runner import-keras model.h5 --out conf/model/mine.yaml --shape x=10,3
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cwd = Path.cwd()
    try:
        shapes = _shapes(args.shape)
    except ValueError as exc:
        parser.error(str(exc))  # exit 2
    try:
        written = import_keras(
            Path(args.src),
            Path(args.weights) if args.weights else None,
            Path(args.out),
            cwd,
            shapes=shapes,
            max_memory_mb=args.max_memory_mb,
            force=args.force,
            dry_run=args.dry_run,
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError) as exc:
        # A file whose values have types no Keras wrote: say so, without a traceback.
        sys.stderr.write(
            printable(
                f"cannot import {args.src}: not a Keras model file this importer understands "
                f"({type(exc).__name__}: {exc})"
            )
            + "\nnothing was written\n"
        )
        return 2
    except UserError as exc:
        n = len(exc.problems)
        sys.stderr.write(f"cannot import: {n} problem{'s' if n != 1 else ''}\n")
        for p in exc.problems:
            sys.stderr.write(f"  {p}\n")
        sys.stderr.write("nothing was written\n")
        return exc.exit_code
    from runner.config.paths import shown_path

    shown = shown_path(written.yaml_path, cwd)
    verb = "wrote" if written.written else "checked, not written (--dry-run):"
    sys.stdout.write(f"{verb} {shown} ({written.n_layers} layers)")
    if written.npz_path is not None:
        npz = shown_path(written.npz_path, cwd)
        sys.stdout.write(f" and {npz} ({written.n_arrays} arrays)")
    sys.stdout.write("\n")
    if written.written and written.yaml_path.parent.name == "model":
        from runner.config.conf_dir import config_dir as shipped

        where = written.yaml_path.parent.parent
        own = where.resolve() == Path(shipped()).resolve()  # the project's own conf/
        config_dir = "" if own else f"--config-dir {shown_path(where, cwd)} "
        sys.stdout.write(
            f"check it: python -m runner {config_dir}+model={written.yaml_path.stem} "
            "task=validate\n"
        )
    return 0


def import_keras(
    src: Path,
    weights: Path | None,
    out: Path,
    cwd: Path,
    shapes: dict[str, tuple[int, ...]] | None = None,
    max_memory_mb: float | None = None,
    force: bool = False,
    dry_run: bool = False,
):
    """Read, map, check and write; raises ConfigError (every problem at once) otherwise."""
    from runner.errors import ConfigError, Problem
    from runner.interop.keras_import import mapping, sources, writer
    from runner.interop.keras_import import weights as weight_layouts
    from runner.interop.keras_import.budget import DEFAULT_MAX_MEMORY_MB, Budget

    limit = DEFAULT_MAX_MEMORY_MB if max_memory_mb is None else max_memory_mb
    budget = Budget(limit * 2**20)
    loaded = sources.load(src.expanduser(), weights.expanduser() if weights else None, budget, cwd)
    try:
        model = loaded.model
        shown = loaded.files[0]
        problems = [Problem(p.path, p.message, shown) for p in mapping.unmappable(model)]
        fixed, shape_problems = _input_shapes(model, shapes or {}, shown)
        if problems or shape_problems:
            raise ConfigError(problems + shape_problems)
        if loaded.weights is not None:
            weight_layouts.assign(model, loaded.weights, loaded.weights_file or shown, budget)
        ours = mapping.to_ours(model, fixed, shown)
        return writer.write(model, ours, loaded.files, out, cwd, limit, force, dry_run)
    finally:
        loaded.close()


def _input_shapes(model, given: dict[str, tuple[int, ...]], shown: str):
    from runner.errors import Problem

    out, problems = {}, []
    unknown = [n for n in given if n not in model.inputs]
    for name in unknown:
        problems.append(
            Problem("--shape", f"no input named {name!r}; inputs: {list(model.inputs)}", shown)
        )
    for name, shape in model.inputs.items():
        path = model.input_paths.get(name, name)
        if name in given:
            out[name] = given[name]
        elif shape is None or any(not isinstance(d, int) or d <= 0 for d in shape):
            what = "declares no shape" if shape is None else f"has shape {tuple(shape)}"
            problems.append(
                Problem(
                    path,
                    f"input {name!r} {what}: our inputs have fixed per-sample shapes; give "
                    f"one with --shape {name}=D1,D2,...",
                    shown,
                )
            )
        else:
            out[name] = tuple(shape)
    return out, problems


def _shapes(values: list[str]) -> dict[str, tuple[int, ...]]:
    out = {}
    for value in values or []:
        name, _, dims = value.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(",") if d.strip())
        except ValueError:
            shape = ()
        if not name or not shape or any(d <= 0 for d in shape):
            raise ValueError(printable(f"--shape {value!r}: expected NAME=D1,D2,... (positive)"))
        out[name] = shape
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layer-runner import-keras",
        description="Turn a Keras model (0.3 to 3: architecture JSON/YAML, whole-model .h5, "
        ".keras archive; weights from save_weights) into a model YAML and one .npz of weights.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", metavar="SRC", help="architecture .json/.yaml, .h5 or .keras")
    parser.add_argument("weights", metavar="WEIGHTS", nargs="?", help="weights .h5 (optional)")
    parser.add_argument("--out", required=True, help="the model YAML to write (NAME.npz beside)")
    parser.add_argument(
        "--shape",
        action="append",
        metavar="NAME=D1,D2",
        help="per-sample shape of an input Keras left open (None), e.g. x=10,3",
    )
    parser.add_argument(
        "--max-memory-mb",
        type=float,
        default=None,
        help="how much weight data may be read (default: max_memory_mb's default, 4096)",
    )
    parser.add_argument("--force", action="store_true", help="replace existing files")
    parser.add_argument(
        "--dry-run", action="store_true", help="read, map and check everything; write nothing"
    )
    return parser

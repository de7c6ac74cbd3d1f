"""``layer-runner export-onnx (+model=NAME | RUN_DIR) [key=value ...] [--config-dir DIR]
--out model.onnx``

The model is checked and planned exactly as ``task=validate`` does (guard, allowed plugins,
schema, file confinement, plan) and built with its own weights, or with a run folder's
trained ``weights.npz``. ``+model=NAME`` is found as ``python -m runner`` finds it: in the
shipped ``conf/``, then in ``--config-dir DIR`` (model files only; a name in both is refused).
The ONNX graph is checked with ``onnx.checker``, run in onnxruntime
on the model's inputs and compared with our test-phase outputs; only an export within
``RTOL`` is written, atomically. Exit 0 written, 2 refused (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from runner.config.conf_dir import sets_searchpath
from runner.errors import ConfigError, UserError, find_in_chain

# What a run folder's config.yaml may carry into an export besides its model: how the model
# computes. Trust settings (allow_plugins, allow_resolvers, data_dirs) and limits
# (max_memory_mb) come from this command line only, never from a file.
RUN_SETTINGS = ("seed", "floatx", "batch_size")
# A run's config.yaml holds a model composed of model files (each at most 1 MiB, guard.py).
RUN_CONFIG_FILES = 16


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    models = [a.removeprefix("+model=") for a in args.items if a.startswith("+model=")]
    folders = [a for a in args.items if "=" not in a]
    overrides = [a for a in args.items if "=" in a and not a.startswith("+model=")]
    if len(models) + len(folders) != 1:
        return _fail("say which model: +model=NAME or one RUN_DIR (a run folder)")
    if args.config_dir is not None and folders:
        return _fail(
            "--config-dir says where +model=NAME is found; a run folder is exported from its "
            "own config.yaml (leave --config-dir out)"
        )
    if args.config_dir is not None and sets_searchpath(overrides):
        return _fail("--config-dir and hydra.searchpath= both add config folders: give one")
    if args.config_dir is not None and not Path(args.config_dir).is_dir():
        what = "not a folder" if Path(args.config_dir).exists() else "no such folder"
        return _fail(f"--config-dir {args.config_dir}: {what} (it should hold model/NAME.yaml)")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        return _fail(f"{exc.name} is not installed: pip install 'keras-layer-runner[onnx]'")
    cwd = Path.cwd()
    yaml_file = None  # the model file composed, for file:line:col
    try:
        if models:
            config, yaml_file = _from_model(models[0], overrides, args.config_dir, cwd)
            model_file = yaml_file
        else:
            config, model_file = _from_run_folder(Path(folders[0]), overrides)
        return _export(config, model_file, cwd, Path(args.out))
    except UserError as exc:
        return _fail(_problems_text(exc, yaml_file, cwd))
    except Exception as exc:  # our bug, not the user's: say so, without a traceback
        sys.stderr.write(
            f"export-onnx: internal error: {type(exc).__name__}: {exc} (nothing was written; "
            "please report it with the model file)\n"
        )
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layer-runner export-onnx",
        description="Export a model (+model=NAME, with its own weights) or a run folder "
        "(RUN_DIR, with its trained weights.npz) to ONNX, checked in onnxruntime against our "
        "outputs. key=value arguments are run settings, as on the command line.",
    )
    parser.add_argument("items", nargs="+", metavar="+model=NAME|RUN_DIR|key=value")
    parser.add_argument("--out", required=True, metavar="FILE", help="the .onnx file to write")
    parser.add_argument(
        "--config-dir",
        "-cd",
        metavar="DIR",
        help="also look for +model=NAME in DIR/model/NAME.yaml, as python -m runner "
        "--config-dir does (model files only; a name also shipped is refused)",
    )
    return parser


def _fail(message: str) -> int:
    sys.stderr.write(f"export-onnx: {message}\n")
    return 2


def _from_model(
    name: str, overrides: list[str], user_dir: str | None, cwd: Path
) -> tuple[dict[str, Any], Path | None]:
    """What ``python -m runner [--config-dir DIR] +model=NAME OVERRIDES`` would run (the guard
    included), and the model file it reads."""
    from hydra.errors import MissingConfigException

    from runner.api import compose_model
    from runner.cli import model_name_clash
    from runner.config import guard
    from runner.config import overrides as override_messages
    from runner.config.paths import shown_path

    try:
        config, files = compose_model(name, overrides, user_dir)
    except Exception as exc:  # composition: unknown model, bad override, a refused file
        refused = find_in_chain(exc, guard.ModelFileError)
        text = str(refused) if refused else override_messages.describe(exc)
        missing = find_in_chain(exc, MissingConfigException)
        if not text and missing and missing.missing_cfg_file == f"model/{name}":
            searched = "the shipped conf/model"
            if user_dir is not None:
                searched += f" and {shown_path(Path(user_dir, 'model'), cwd)} (--config-dir)"
            text = f"no model file {name}.yaml in {searched}"
            if user_dir is not None and Path(user_dir, f"{name}.yaml").is_file():
                text += "; --config-dir names the folder that holds model/, not model/ itself"
        raise ConfigError.one("+model", text or str(exc).strip().splitlines()[0]) from None
    clash = model_name_clash(files, cwd)
    if clash:
        raise ConfigError.one("+model", clash)
    return config, (files[0] if files else None)


def _from_run_folder(folder: Path, overrides: list[str]) -> tuple[dict[str, Any], Path]:
    """The run's validated config (its config.yaml) with the run's weights.npz for every
    parameter; run settings from this command line, computing ones (RUN_SETTINGS) from the
    run unless given here (never a limit: max_memory_mb is this command line's)."""
    from runner.check import run_settings
    from runner.config.paths import stays_inside

    config_file, weights = folder / "config.yaml", folder / "weights.npz"
    for needed in (config_file, weights):
        if not needed.is_file():
            raise ConfigError.one(
                "RUN_DIR", f"{needed} not found: a run folder holds config.yaml and weights.npz"
            )
        if not stays_inside(needed, folder):  # as evaluate.run's files
            raise ConfigError.one(
                "RUN_DIR",
                f"{needed} leads outside the run folder (a symlink): a run folder's own "
                "files are read, never another file of the machine",
            )
    recorded = _read_run_config(config_file)
    if not isinstance(recorded, dict) or not isinstance(recorded.get("model"), dict):
        raise ConfigError.one("RUN_DIR", f"{config_file} holds no model: not a run folder")
    try:
        settings = run_settings(overrides)
    except Exception as exc:
        raise ConfigError.one("(override)", str(exc).strip().splitlines()[0]) from None
    given = {o.lstrip("+").split("=", 1)[0] for o in overrides}
    for key in RUN_SETTINGS:
        if key in recorded and key not in given:
            settings[key] = recorded[key]
    model = _without_layer_weights(recorded["model"])
    model["weights"] = {"path": str(weights), "strict": True}
    return {**settings, "model": model}, config_file


def _read_run_config(config_file: Path) -> Any:
    """A run folder's config.yaml, bounded as a model file is before anything is built: a run
    folder is a file like any other, and a few lines of YAML aliases expand to 10^8 values."""
    from runner.config.guard import MAX_FILE_BYTES, ModelFileError, check_yaml_size

    limit = RUN_CONFIG_FILES * MAX_FILE_BYTES
    try:
        with config_file.open("rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ConfigError.one(
                "RUN_DIR", f"{config_file} holds more than {limit:,} bytes: not a run's config"
            )
        text = data.decode("utf-8")
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        check_yaml_size(yaml.compose(text, Loader=loader), str(config_file))
        return yaml.safe_load(text)  # no Python tags
    except ModelFileError as exc:
        raise ConfigError.one("RUN_DIR", f"cannot read {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise ConfigError.one("RUN_DIR", f"cannot read {config_file}: {exc}") from None


def _without_layer_weights(model: dict[str, Any]) -> dict[str, Any]:
    """The model with no per-layer ``weights:`` (the run's weights.npz gives them all)."""

    def strip(spec: Any) -> Any:
        if isinstance(spec, dict):
            return {k: strip(v) for k, v in spec.items() if k != "weights"}
        return spec

    return {**model, "layers": {k: strip(v) for k, v in (model.get("layers") or {}).items()}}


def _export(config: dict[str, Any], model_file: Path | None, cwd: Path, out: Path) -> int:
    from runner.graph.build import build
    from runner.graph.context import phase
    from runner.interop.onnx_export.export import to_onnx
    from runner.interop.onnx_export.verify import RTOL, compare
    from runner.output import artifacts
    from runner.run import check_and_plan

    config = {**config, "task": "validate"}  # plan as task=validate does; nothing is trained
    plan = build(check_and_plan(config, cwd, model_file))
    model = to_onnx(plan)
    data = model.SerializeToString()
    if phase(plan.spec):
        print("note: this model runs in the train phase by default; ONNX holds the inference pass")
        print("      (Dropout is the identity), compared with our test phase")
    agreement = compare(plan, data)
    worst, value = agreement.worst
    print(
        f"onnxruntime vs our runtime on {agreement.rows} row(s): largest deviation "
        f"{value:.3g} (output {worst!r}; limit {RTOL:g})"
    )
    if not agreement.ok:
        raise ConfigError.one(
            "--out",
            f"not written: onnxruntime's {worst!r} deviates by {value:.3g} from ours, above "
            f"{RTOL:g}; please report it with the model file",
        )
    try:
        artifacts.write_bytes(out, data)
    except OSError as exc:  # the machine's (disk full, read-only, --out names a folder)
        sys.stderr.write(f"export-onnx: cannot write {out}: {exc}\n")
        return 1
    nodes, weights = len(model.graph.node), len(model.graph.initializer)
    print(f"wrote {out} (opset {model.opset_import[0].version}, {nodes} nodes, {weights} tensors)")
    return 0


def _problems_text(exc: UserError, model_file: Path | None, cwd: Path) -> str:
    """One line per problem, with file:line:col in the model file where it is known."""
    from runner.config.paths import shown_path
    from runner.config.positions import locate_all

    text = None
    if model_file is not None:
        try:
            text = model_file.read_text(encoding="utf-8")
        except OSError:
            text = None
    n = len(exc.problems)
    lines = [f"refused: {n} problem{'s' if n != 1 else ''} (nothing written)"]
    places = locate_all(text, [p.path for p in exc.problems]) if text is not None else []
    for i, problem in enumerate(exc.problems):
        where = ""
        if text is not None and problem.path.startswith("model"):
            line, column = places[i]
            where = f"{shown_path(model_file, cwd)}:{line}:{column}: "
        lines.append(f"  {where}{problem}")
    return "\n".join(lines)

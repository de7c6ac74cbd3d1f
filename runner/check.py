"""Check a repository of model files in one process: ``layer-runner check PATH... [key=value]``.

Each model file goes through the same checks as ``task=validate`` (the guard on the file,
plugins, the schema, the files it may read, the plan with its fit part), and no run folder is
written. Every problem is printed as ``file:line:col: config.path: message``;
``--format github`` prints workflow annotations, ``--format json`` one JSON document.
Exit code 0 when every file is valid, 2 otherwise.

    layer-runner check conf/model                    # every .yaml below a folder
    python -m runner.check 'conf/model/*.yaml' allow_plugins=[my_layers.masking]
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runner.config.paths import stays_inside


@dataclass
class Finding:
    file: str
    line: int
    column: int
    path: str
    message: str

    def text(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"

    def github(self) -> str:
        def escape(value: str, prop: bool = False) -> str:
            value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
            return value.replace(":", "%3A").replace(",", "%2C") if prop else value

        return (
            f"::error file={escape(self.file, True)},line={self.line},col={self.column}"
            f"::{escape(self.path)}: {escape(self.message)}"
        )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(sys.argv[1:] if argv is None else argv)
    paths = [a for a in args.paths if "=" not in a or Path(a).exists()]
    overrides = [a for a in args.paths if a not in paths]
    cwd = Path.cwd()
    try:
        settings = run_settings(overrides)
    except Exception as exc:  # a malformed override: Hydra's own message
        sys.stderr.write(f"invalid override: {str(exc).strip().splitlines()[0]}\n")
        return 2
    files, missing, outside = model_files(paths)
    findings = [Finding(p, 1, 1, "(path)", "no such file, folder or glob match") for p in missing]
    findings += [
        Finding(p, 1, 1, "(path)", "a symlink that leads outside the folder checked: never read")
        for p in outside
    ]
    for file in files:
        findings.extend(check_file(file, settings, cwd))
    _report(findings, len(files) + len(missing) + len(outside), args.format)
    return 2 if findings else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layer-runner check",
        description="Validate model files (files, folders, globs) as task=validate does, "
        "without run folders. key=value arguments are run settings, as on the command line.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH|key=value")
    parser.add_argument("--format", choices=["text", "github", "json"], default="text")
    return parser


def run_settings(overrides: list[str]) -> dict[str, Any]:
    """The project's run settings with the command line's overrides, composed once."""
    from hydra import compose
    from omegaconf import OmegaConf

    from runner.config import guard
    from runner.config.conf_dir import initialize

    guard.install(guard.command_line_list(overrides, "allow_resolvers"))
    with initialize():
        cfg = compose("config", overrides=overrides)
    settings = OmegaConf.to_container(cfg, resolve=True)
    settings["task"] = "validate"
    return settings  # type: ignore[return-value]


def model_files(paths: list[str]) -> tuple[list[Path], list[str], list[str]]:
    """Files as given; folders by every .yaml/.yml below them; glob patterns expanded. Also
    the names given that match nothing, and the files below a folder that lead outside it
    (symlinks resolved): a link planted in a repository of configs cannot make the check read,
    and print values of, another file of the machine."""
    found: list[Path] = []
    missing: list[str] = []
    outside: list[str] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            for q in sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml")):
                if stays_inside(q, p):
                    found.append(q)
                else:
                    outside.append(str(q))
        elif p.is_file():
            found.append(p)
        else:
            matches = sorted(Path(m) for m in glob.glob(given, recursive=True))
            found += [m for m in matches if m.is_file()]
            if not matches:
                missing.append(given)
    unique = list(dict.fromkeys(f.resolve() for f in found))
    return unique, missing, outside


def check_file(file: Path, settings: dict[str, Any], cwd: Path) -> list[Finding]:
    from runner.config import guard
    from runner.config.paths import shown_path
    from runner.config.positions import locate_all
    from runner.errors import UserError, printable
    from runner.run import check_and_plan

    shown = shown_path(file, cwd)
    try:
        text = file.read_text(encoding="utf-8")
        guard.check_model_file(file, settings.get("allow_resolvers") or ())
        config = _resolved({**settings, "model": _model(file, text)})
        check_and_plan(config, cwd, model_file=file)
    except guard.ModelFileError as exc:
        return [Finding(shown, exc.line, exc.column, "(file)", printable(exc.message))]
    except UserError as exc:
        where = locate_all(text, [p.path for p in exc.problems])
        return [
            Finding(shown, *at, printable(p.path), _message(p))
            for p, at in zip(exc.problems, where, strict=True)
        ]
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(shown, 1, 1, "(file)", f"cannot read: {exc}")]
    except Exception as exc:  # composition errors (interpolations), never a traceback
        return [Finding(shown, 1, 1, "(config)", printable(f"{type(exc).__name__}: {exc}"))]
    return []


def _model(file: Path, text: str) -> Any:
    """The model part of the config: the file alone, or composed by Hydra when it pulls in
    other model files through ``defaults:`` (then it must sit in a ``model/`` folder)."""
    import yaml
    from omegaconf import OmegaConf

    from runner.errors import ConfigError

    data = yaml.safe_load(text)
    if not (isinstance(data, dict) and "defaults" in data):
        return OmegaConf.to_container(OmegaConf.create(data or {}), resolve=False)
    if file.parent.name != "model":
        raise ConfigError.one(
            "model.defaults",
            "a model file with defaults: must sit in a folder named model/ (a Hydra config group)",
        )
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(file.parent.parent.resolve()), version_base="1.3"):
        cfg = compose(overrides=[f"+model={file.stem}"])
    return OmegaConf.to_container(cfg.model, resolve=False)


def _resolved(config: dict[str, Any]) -> dict[str, Any]:
    """Interpolations resolved as Hydra resolves them for a run (``${seed}``, ``${model...}``)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.create(config), resolve=True)  # type: ignore[return-value]


def _message(problem: Any) -> str:
    from runner.errors import printable

    text = problem.message + (f" ({problem.file})" if problem.file else "")
    return printable(text)


def _report(findings: list[Finding], n_files: int, fmt: str) -> None:
    if fmt == "json":
        print(
            json.dumps(
                {"files": n_files, "ok": not findings, "problems": [asdict(f) for f in findings]},
                indent=2,
            )
        )
        return
    for f in findings:
        print(f.github() if fmt == "github" else f.text())
    bad = len({f.file for f in findings})
    print(
        f"{n_files} model file{'s' if n_files != 1 else ''} checked: "
        f"{'all valid' if not findings else f'{bad} with {len(findings)} problem(s)'}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main())

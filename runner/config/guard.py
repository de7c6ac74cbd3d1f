"""The guard on every file Hydra loads: model files are data, never Hydra or run settings.

Hydra reads each config file through a *config source*. We register our own sources for the
``file://`` and ``pkg://`` schemes that check the raw text before OmegaConf builds anything,
so a refused file stops the command before Hydra instantiates callbacks, launchers, sweepers
or logging:

- every file: bounded size, nesting depth and expanded size (YAML aliases are counted as
  often as they are used, so an alias bomb is refused before it is expanded);
- a file of the ``model`` group (wherever it was found): its package is the group's; it holds
  no ``hydra:`` key and no ``_target_``-like key; its ``defaults:`` only pull in other model
  files, into the model package; its interpolations use only the resolvers allowed
  (``allow_resolvers`` on the command line adds more);
- a file found through ``--config-dir`` or ``hydra.searchpath`` must be a model file: only the
  command line and the project's own ``conf/`` configure Hydra and the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from hydra._internal.core_plugins import file_config_source as _hydra_sources
from hydra._internal.core_plugins import importlib_resources_config_source as _hydra_packages
from hydra.plugins.config_source import ConfigResult, ConfigSource

from runner.config.paths import shown_path

MODEL_GROUP = "model"
MAX_FILE_BYTES = 1 << 20  # 1 MiB of YAML; bigger data belongs in .npy files
MAX_EXPANDED_NODES = 200_000  # YAML nodes after aliases are expanded
MAX_DEPTH = 40  # nested mappings and lists
# Resolvers a model file may call: they only read the config itself. Others (oc.env,
# oc.decode, hydra, now, ...) need allow_resolvers=[NAME] on the command line.
SAFE_RESOLVERS = frozenset({"oc.select", "oc.dict.keys", "oc.dict.values"})
# Top-level keys of the run config that are not also model keys (training and fit are both):
# a model file that names one means to change the run (tests keep this equal to the schema).
RUN_SETTINGS = frozenset(
    {
        "task",
        "seed",
        "floatx",
        "batch_size",
        "max_memory_mb",
        "max_disk_mb",
        "progress",
        "outputs_to_disk",
        "save_csv",
        "evaluate",
        "shard",
        "allow_plugins",
        "allow_resolvers",
        "data_dirs",
        "tracking",
        "tracking_uri",
    }
)
CODE_KEYS = frozenset({"_target_", "_args_", "_partial_", "_convert_", "_recursive_"})
# Providers of search-path entries that the person running did not write into the project:
# --config-dir ("command-line") and hydra.searchpath ("hydra.searchpath in ...").
_UNTRUSTED_PROVIDERS = ("command-line", "hydra.searchpath")
# A resolver call, as OmegaConf's lexer reads names: letters, digits, '_', '-', dots.
_RESOLVER_CALL = re.compile(r"\$\{\s*([A-Za-z_][\w.\-]*)\s*:")


class ModelFileError(Exception):
    """A config file was refused; ``str()`` is ``file:line:col: message``."""

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        self.file, self.line, self.column, self.message = file, line, column, message
        super().__init__(f"{file}:{line}:{column}: {message}")


@dataclass
class Policy:
    """What the person running the command allowed (from the command line)."""

    resolvers: frozenset[str] = SAFE_RESOLVERS


_policy = Policy()


def install(allow_resolvers: Iterable[str] = ()) -> None:
    """Route Hydra's file:// and pkg:// config sources through the guard, and oc.env through
    the recorder that masks what it hands out (idempotent): every command that reads model
    files (a run, check, export-onnx, the API) installs both."""
    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins

    from runner.config import redact

    redact.watch_environment()
    _policy.resolvers = SAFE_RESOLVERS | frozenset(allow_resolvers)
    Plugins.instance()  # registers Hydra's own sources first; ours then replace two of them
    types = SourcesRegistry.instance().types
    types["file"], types["pkg"] = FileConfigSource, ImportlibResourcesConfigSource


def command_line_list(args: list[str], key: str) -> list[str]:
    """Every value given to ``key=[...]`` on the command line (sweeps included)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in args if not a.startswith("-") and "=" in a]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except Exception:  # Hydra reports a malformed override itself, with its own message
        return []
    found: list[str] = []
    for override in overrides:
        if override.get_key_element().lstrip("+~") == key:
            found.extend(_strings(override.value()))
    return found


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    items = getattr(value, "list", None)  # a sweep: allow_resolvers=[a],[b]
    return _strings(items) if items is not None else []


def check_model_file(path: Path, allow_resolvers: Iterable[str] = ()) -> None:
    """The checks of a model-group file, for a model YAML read without Hydra."""
    from runner.config import redact

    redact.watch_environment()  # (as install does)
    shown = shown_path(path.resolve())
    text = _read_text(path, shown)
    previous = _policy.resolvers
    _policy.resolvers = SAFE_RESOLVERS | frozenset(allow_resolvers)
    try:
        check_text(text, shown, f"{MODEL_GROUP}/{path.stem}", _header(text), trusted=False)
    finally:
        _policy.resolvers = previous


def check_text(
    text: str, shown: str, config_path: str, header: dict[str, Any], trusted: bool
) -> None:
    """All checks on one config file's raw text. ``config_path`` is Hydra's (``model/x``)."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise ModelFileError(
            shown,
            1,
            1,
            f"the file is more than {MAX_FILE_BYTES:,} bytes, the limit for a config "
            "file: keep large data in .npy files and name them ({path: data/x.npy})",
        )
    root = _compose(text, shown)
    check_yaml_size(root, shown)
    in_model_group = config_path.split("/", 1)[0] == MODEL_GROUP and "/" in config_path
    if not in_model_group:
        if not trusted:
            raise ModelFileError(
                shown,
                1,
                1,
                f"{config_path}.yaml is not a model file: only "
                "model/NAME.yaml files are read from --config-dir and "
                "hydra.searchpath; run settings and Hydra settings come from "
                "the command line",
            )
        return
    _check_package(text, header, shown)
    if root is None:
        return
    _check_node(root, shown, top=True)


def _compose(text: str, shown: str) -> yaml.Node | None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ModelFileError(shown, line, col, f"malformed YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ModelFileError(shown, 1, 1, f"malformed YAML: {exc}") from None


def check_yaml_size(root: yaml.Node | None, shown: str) -> None:
    """The nesting and expanded-size bounds of every config file, on a composed YAML tree
    (``yaml.compose``, nothing constructed yet): ModelFileError at the node at fault. Nodes
    are counted with aliases expanded (each distinct node sized once: linear time). Other
    YAML the runner reads (Keras architecture files) is bounded by this same check."""
    if root is None:
        return
    sizes: dict[int, int] = {}
    # Iterative post-order walk: the depth is checked before any recursion could overflow.
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if id(node) in sizes and not done:
            continue
        if depth > MAX_DEPTH:
            raise _at(
                node,
                shown,
                f"nesting deeper than {MAX_DEPTH} levels: flatten the "
                "config, keep arrays of many dimensions in .npy files",
            )
        children = _children(node)
        if not done:
            stack.append((node, depth, True))
            stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
        if sizes[id(node)] > MAX_EXPANDED_NODES:
            raise _at(
                node,
                shown,
                f"this YAML expands to more than {MAX_EXPANDED_NODES:,} "
                "values (aliases count each time they are used): keep large data in .npy "
                "files and name them ({path: data/x.npy})",
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_package(text: str, header: dict[str, Any], shown: str) -> None:
    package = header.get("package")
    if package in (None, MODEL_GROUP):  # (Hydra 1.3 reads _group_ as a literal key)
        return
    line = next((i for i, t in enumerate(text.splitlines(), 1) if "@package" in t), 1)
    raise ModelFileError(
        shown,
        line,
        1,
        f"'# @package {package}': a model file sets keys under "
        "model only; remove the directive (run settings and Hydra settings "
        "come from the command line)",
    )


def _check_node(node: yaml.Node, shown: str, top: bool = False) -> None:
    """_target_-like keys, hydra:, defaults: and resolvers, anywhere in a model file."""
    seen: set[int] = set()
    stack = [(node, top)]
    while stack:
        current, is_top = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            _check_scalar(current, shown)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name in CODE_KEYS:
                    raise _at(
                        key,
                        shown,
                        f"{name!r} is not accepted: a config cannot name code "
                        "to import or call; custom layers come from plugins the person "
                        "running allows (allow_plugins=[MODULE])",
                    )
                if is_top and name in RUN_SETTINGS:
                    raise _at(
                        key,
                        shown,
                        f"{name!r} is a run setting: a model file sets keys "
                        f"under model only; give it on the command line ({name}=...)",
                    )
                if is_top and name == "hydra":
                    raise _at(
                        key,
                        shown,
                        "a model file cannot configure Hydra (hydra: keys "
                        "come from the command line and the project's conf/)",
                    )
                if is_top and name == "defaults":
                    _check_defaults(value, shown)
                stack.append((key, False))
                stack.append((value, False))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((c, False) for c in current.value)


def _check_scalar(node: yaml.ScalarNode, shown: str) -> None:
    if "${" not in node.value:
        return
    names = set(_RESOLVER_CALL.findall(node.value))
    if node.value.count("${") > 1:  # nested: read the names as OmegaConf's grammar does
        composed, parsed = _parsed_resolver_names(node.value)
        if composed:
            raise _at(
                node,
                shown,
                f"the resolver name {composed!r} is built from an interpolation: a model "
                "file names its resolvers literally (so that the allowed ones can be "
                "checked), e.g. ${oc.select:KEY}",
            )
        names |= parsed
    for name in sorted(names):
        if name not in _policy.resolvers:
            raise _at(
                node,
                shown,
                f"the resolver {name!r} is not allowed in a model file "
                f"(allowed: {', '.join(sorted(_policy.resolvers))}); a model file cannot "
                f"read the environment or the machine. If you trust this file, allow it "
                f"on the command line: allow_resolvers=[{name}]",
            )


def _parsed_resolver_names(value: str) -> tuple[str | None, set[str]]:
    """(the first resolver name built from an interpolation, or None; every literal resolver
    name) in ``value``, from OmegaConf's own parse tree: its grammar lets a resolver name
    hold interpolations (``${oc.${x}:KEY}`` calls ``oc.env`` when x is ``env``), which no
    pattern on the raw text can see. A value OmegaConf cannot parse is never resolved."""
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser
    from omegaconf.grammar_parser import parse

    try:
        tree = parse(value)
    except Exception:  # GrammarParseError and ANTLR's own: OmegaConf refuses the value too
        return None, set()
    names: set[str] = set()
    stack = [tree]
    while stack:
        ctx = stack.pop()
        if isinstance(ctx, OmegaConfGrammarParser.InterpolationResolverContext):
            name = ctx.getChild(1)
            text = name.getText()
            if any(
                isinstance(part, OmegaConfGrammarParser.InterpolationContext)
                for part in name.getChildren()
            ):
                return text, names
            names.add(text)
        stack.extend(c for c in ctx.getChildren() if hasattr(c, "getChildren"))
    return None, names


def _check_defaults(node: yaml.Node, shown: str) -> None:
    """A model file's defaults list only pulls in other model files, into the model package."""
    if not isinstance(node, yaml.SequenceNode):
        raise _at(node, shown, "defaults: expected a list of model file names")
    for item in node.value:
        if isinstance(item, yaml.ScalarNode):
            entry, where = item.value, item
        elif isinstance(item, yaml.MappingNode) and len(item.value) == 1:
            key, value = item.value[0]
            entry, where = str(key.value), key
            if not isinstance(value, yaml.ScalarNode):
                raise _at(
                    value,
                    shown,
                    "defaults: a model file may only name single model files (no lists of options)",
                )
        else:
            raise _at(item, shown, "defaults: expected a model file name")
        _check_default_entry(entry, where, shown)


def _check_default_entry(entry: str, node: yaml.Node, shown: str) -> None:
    words = entry.split()
    keywords, target = words[:-1], words[-1] if words else ""
    if "override" in keywords or any(w not in ("optional", "override") for w in keywords):
        raise _at(
            node, shown, f"defaults: {entry!r}: a model file cannot override other config groups"
        )
    if target == "_self_":
        return
    path, _, package = target.partition("@")
    if path.startswith("/") and not (
        path == f"/{MODEL_GROUP}" or path.startswith(f"/{MODEL_GROUP}/")
    ):
        raise _at(
            node,
            shown,
            f"defaults: {entry!r}: a model file may only pull in other "
            f"model files (model/NAME), not {path.lstrip('/')!r}",
        )
    if ".." in path.split("/"):
        raise _at(node, shown, f"defaults: {entry!r}: '..' is not accepted in a model file")
    if package and ("_global_" in package or package.startswith(".")):
        raise _at(
            node,
            shown,
            f"defaults: {entry!r}: a model file may only place configs "
            "under model (no @_global_ package)",
        )


def _at(node: yaml.Node, shown: str, message: str) -> ModelFileError:
    mark = node.start_mark
    return ModelFileError(shown, mark.line + 1, mark.column + 1, message)


def _trusted(provider: str | None) -> bool:
    return not (provider or "").startswith(_UNTRUSTED_PROVIDERS)


# Our sources keep the class names of Hydra's own, so Hydra's registry (and the copies of it
# that launchers send to worker processes) treats them as the registered ones.
class FileConfigSource(_hydra_sources.FileConfigSource):
    def load_config(self, config_path: str) -> ConfigResult:
        name = self._normalize_file_name(config_path)
        found = Path(self.path, name)
        full = found.resolve()
        if found.exists() or found.is_symlink():
            _check_inside(found, full, Path(self.path).resolve(), config_path)
            if "/" in config_path:  # and inside its group's folder (model/)
                group = config_path.split("/", 1)[0]
                _check_inside(found, full, Path(self.path, group).resolve(), config_path)
        if full.is_file():
            shown = shown_path(full)
            text = _read_text(full, shown)
            check_text(text, shown, config_path, _header(text), _trusted(self.provider))
        return super().load_config(config_path)


def _check_inside(found: Path, full: Path, root: Path, config_path: str) -> None:
    """A config file lies inside ``root``, the folder Hydra found it in and its group's
    folder there, symlinks resolved: a link planted in a config folder cannot pull another
    file into a config (a credentials file, which YAML or JSON reads as a config, then echoed
    by messages, interpolations and config.yaml), neither one elsewhere on the machine nor
    one beside the group folders (a .env or credentials.json at the root of a repository
    given as --config-dir). (Hydra itself never lists a FIFO or device as a config.)"""
    shown = str(Path(shown_path(found.parent), found.name))  # the link, not where it leads
    if not full.is_relative_to(root):
        raise ModelFileError(
            shown,
            1,
            1,
            f"{config_path}.yaml leads outside its config folder {root.name}/ (symlinks are "
            "followed): config files are read only from inside the folders of the search "
            "path, each from its own group's folder",
        )


class ImportlibResourcesConfigSource(_hydra_packages.ImportlibResourcesConfigSource):
    def load_config(self, config_path: str) -> ConfigResult:
        name = self._normalize_file_name(config_path)
        res = resources.files(self.path).joinpath(name)
        if res.is_file():
            shown = f"{self.path}/{name}"
            text = res.read_bytes()[: MAX_FILE_BYTES + 1].decode("utf-8", "replace")
            check_text(text, shown, config_path, _header(text), _trusted(self.provider))
        return super().load_config(config_path)


def _header(text: str) -> dict[str, Any]:
    """The ``# @package`` header exactly as Hydra reads it (from the first 512 characters)."""
    return ConfigSource._get_header_dict(text[:512])


def _read_text(path: Path, shown: str) -> str:
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(shown, 1, 1, f"not UTF-8 text (byte {exc.start})") from None

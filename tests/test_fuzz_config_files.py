"""Fuzzing what a stranger's model file can say to Hydra: package directives, ``defaults:``
lists and ``hydra:`` keys, in the model file and in a file it pulls in.

The property, checked by composing each generated file with Hydra (in process): either the
guard refuses the file (``ModelFileError``), or Hydra refuses it, or the composed config is the
project's own everywhere outside ``model`` (run settings, Hydra's callbacks, run and sweep
folders, launcher, sweeper, logging, searchpath): a model file changes the model only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from runner.config.guard import ModelFileError

ROOT = Path(__file__).resolve().parent.parent
_LONG = os.environ.get("FUZZ_EXAMPLES")
FUZZ = settings(
    max_examples=int(_LONG) if _LONG else 300,
    deadline=None,
    derandomize=not _LONG,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

PACKAGES = [
    None,
    "_global_",
    "_group_",
    "model",
    "hydra",
    "hydra.callbacks",
    "model.sub",
    "_global_.model",
    "foo",
    "_here_",
]
DEFAULT_ENTRIES = [
    "_self_",
    "base",
    "/model/base",
    "optional base",
    "base@_here_",
    "base@sub",
    "base@_global_",
    "base@_global_.hydra",
    "/model: base",
    "/hydra/callbacks: evil",
    "hydra/callbacks: evil",
    "override /hydra/launcher: basic",
    "/experiment: global_exp",
    "override /model: base",
    "/model/base@_global_",
    "../experiment/global_exp",
    "optional /hydra/callbacks: evil",
    "/hydra/job_logging: disabled",
    "base@..hydra",
]
BODIES = [
    {"hydra": {"callbacks": {"evil": {"_target_": "builtins.print"}}}},
    {"hydra": {"run": {"dir": "/tmp/elsewhere"}}},
    {"seed": 7, "task": "fit", "max_memory_mb": 1e9},
    {"allow_plugins": ["evil"], "data_dirs": ["/"]},
    {"callbacks": {"evil": {"_target_": "builtins.print"}}},
    {"run": {"dir": "/tmp/elsewhere"}},
    {"inputs": {"x": {"data": [[1.0]]}}, "layers": {"d": {"type": "Dense", "output_dim": 1}}},
    {"defaults_note": "${oc.env:HOME}"},
    {"layers": {"d": {"type": "${seed}"}}},
]
# Hydra keys whose values a model file must never change.
HYDRA_KEYS = [
    "callbacks",
    "run",
    "sweep",
    "launcher",
    "sweeper",
    "job_logging",
    "hydra_logging",
    "searchpath",
    "mode",
    "output_subdir",
    "verbose",
]


def _text(package: str | None, defaults: list[str], body: dict) -> str:
    lines = [f"# @package {package}"] if package else []
    if defaults:
        lines.append("defaults:")
        lines += [f"  - {entry}" for entry in defaults]
    lines.append(OmegaConf.to_yaml(OmegaConf.create(body)) if body else "")
    return "\n".join(lines) + "\n"


model_files = st.builds(
    _text,
    st.sampled_from(PACKAGES),
    st.lists(st.sampled_from(DEFAULT_ENTRIES), max_size=3),
    st.fixed_dictionaries({}, optional={f"k{i}": st.just(b) for i, b in enumerate(BODIES)}).map(
        lambda d: {k: v for b in d.values() for k, v in b.items()}
    ),
)


@pytest.fixture(scope="module")
def compose():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from runner.config import guard

    guard.install()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-conf-"))
    for rel, text in {
        "hydra/callbacks/evil.yaml": "evil: {_target_: builtins.print}\n",
        "experiment/global_exp.yaml": "# @package _global_\nseed: 9\n",
    }.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    (folder / "model").mkdir(exist_ok=True)

    def _compose(model_text: str, base_text: str):
        (folder / "model" / "evil.yaml").write_text(model_text)
        (folder / "model" / "base.yaml").write_text(base_text)
        GlobalHydra.instance().clear()
        with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
            return hydra_compose(
                "config",
                overrides=[f"hydra.searchpath=[file://{folder}]", "+model=evil"],
                return_hydra_config=True,
            )

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture(scope="module")
def baseline(compose):
    return compose("inputs: {x: {data: [[1.0]]}}\n", "{}\n")


def _refused(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ModelFileError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@FUZZ
@given(model_text=model_files, base_text=model_files)
def test_a_model_file_changes_the_model_only(compose, baseline, model_text, base_text):
    try:
        cfg = compose(model_text, base_text)
    except Exception as exc:  # refused by the guard, or a composition error of Hydra's own
        if _refused(exc):
            return
        assert "Traceback" not in str(exc)
        return
    for key in baseline:
        if key not in ("model", "hydra"):
            assert cfg[key] == baseline[key], (key, model_text, base_text)
    assert set(cfg) - {"model"} == set(baseline) - {"model"}, (model_text, base_text)
    ours, theirs = (OmegaConf.to_container(c.hydra) for c in (cfg, baseline))
    for key in HYDRA_KEYS:
        assert ours[key] == theirs[key], (key, model_text, base_text)
    assert ours["job"]["env_set"] == theirs["job"]["env_set"]


def test_the_fuzzer_reaches_both_outcomes(compose):
    """The generator's extremes: a plain model file composes, a global one is refused."""
    cfg = compose("inputs: {x: {data: [[2.0]]}}\n", "{}\n")
    assert cfg.model.inputs.x.data == [[2.0]]
    with pytest.raises(Exception) as info:
        compose("# @package _global_\nseed: 3\n", "{}\n")
    assert _refused(info.value)

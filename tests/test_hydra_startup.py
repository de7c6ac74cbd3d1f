"""runner.config.hydra_startup: the work it spares Hydra changes nothing Hydra would compose."""

from __future__ import annotations

import copy

import pytest
from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from runner.config import guard, hydra_startup
from runner.config.conf_dir import config_dir

PLAIN = [
    ["+model=dense_example"],
    ["+model=dense_example", "seed=3", "model.layers.dense.output_dim=4", "training=true"],
    ["+model=dense_example", "hydra.run.dir=somewhere", "hydra.job.name=x"],
    ["--help"],
    ["-h", "--resolve"],
    ["+model=dense_example", "--cfg", "job"],
    ["+model=dense_example", "--cfg=job", "-cd", "my_conf"],
    [],
]
NOT_PLAIN = [
    ["-m", "+model=dense_example", "seed=1,2"],
    ["--multirun", "+model=dense_example"],
    ["+experiment=dropout_tuning"],  # its file sets hydra.mode: MULTIRUN
    ["experiment=dropout_tuning"],
    ["hydra.mode=MULTIRUN", "+model=dense_example"],
    ["+model=dense_example", "hydra/launcher=joblib"],
    ["+model=dense_example", "hydra.launcher.n_jobs=2"],
    ["+model=dense_example", "hydra.sweeper.max_batch_size=2"],
    ["+model=dense_example", "hydra.searchpath=[file://elsewhere]"],
    ["+model@hydra=dense_example"],
    ["+model=dense_example", "--cfg", "hydra"],
    ["--hydra-help"],
    ["--info", "plugins"],
    ["-sc", "install=bash"],
    ["-cn", "other"],
    ["--config-path", "elsewhere", "+model=dense_example"],
    ["+model=dense_example", "seed=="],  # malformed: Hydra reports it
]


@pytest.mark.parametrize("argv", PLAIN)
def test_plain_commands(argv):
    assert hydra_startup.is_plain(argv)


@pytest.mark.parametrize("argv", NOT_PLAIN)
def test_commands_hydra_handles_as_it_always_does(argv):
    assert not hydra_startup.is_plain(argv)


def test_another_primary_config_is_never_plain(monkeypatch):
    monkeypatch.setenv("RUNNER_CONFIG_DIR", config_dir())
    assert not hydra_startup.is_plain(["+model=dense_example"])


def test_a_group_of_a_config_dir_is_no_plain_selection(tmp_path):
    (tmp_path / "extra").mkdir()
    assert not hydra_startup.is_plain(["-cd", str(tmp_path), "+extra=x"])
    assert hydra_startup.is_plain(["-cd", str(tmp_path), "+model=x"])


def _hydra_mode(overrides: list[str]):
    """What stock Hydra's get_mode answers (it composes the whole config to know)."""
    guard.install([])
    with initialize_config_dir(config_dir(), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        return hydra_startup._hydra_get_mode(hydra, "config", overrides)


@pytest.mark.parametrize("argv", [a for a in PLAIN if "-cd" not in a])
def test_hydra_finds_no_mode_where_the_shortcut_skips_looking(argv):
    overrides = [a for a in argv if not a.startswith("-") and a != "job"]
    assert _hydra_mode(overrides) is None


def test_the_shortcut_leaves_a_mode_set_by_a_config_or_an_override_to_hydra():
    assert _hydra_mode(["+experiment=dropout_tuning"]) == RunMode.MULTIRUN
    assert _hydra_mode(["hydra.mode=MULTIRUN", "+model=dense_example"]) == RunMode.MULTIRUN


def test_copies_of_the_structured_source_share_the_store_which_composing_never_changes(
    monkeypatch,
):
    from hydra import compose
    from hydra._internal.sources_registry import SourcesRegistry

    source = hydra_startup.StructuredConfigSource("schema", "structured://")
    assert copy.deepcopy(source).store is source.store is ConfigStore.instance()

    guard.install([])
    registry = SourcesRegistry.instance().types
    monkeypatch.setitem(registry, "structured", hydra_startup.StructuredConfigSource)
    stored = ConfigStore.instance().repo["hydra"]["config.yaml"].node
    before = copy.deepcopy(stored)
    with initialize_config_dir(config_dir(), version_base="1.3"):
        first = compose("config", overrides=["+model=dense_example"], return_hydra_config=True)
        first.hydra.job.name = "changed"  # a composed config is the caller's own copy
        second = compose("config", overrides=["+model=dense_example"], return_hydra_config=True)
    assert second.hydra.job.name == "run"
    assert stored == before

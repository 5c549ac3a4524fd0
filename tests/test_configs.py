"""Every option of every config group composes; unknown keys fail with Hydra's error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"
# Groups and the entry points that use them.
GROUPS = {
    "data": ["train", "predict"],
    "model": ["train"],
    "task": ["predict"],
    "trainer": ["train", "predict"],
    "paths": ["train", "predict"],
    "logger": ["train", "predict"],
    "callbacks": ["train"],
    "experiment": ["train"],
}
# Keys that only resolve inside a Hydra run or need data on disk are left unresolved here.
_SKIP_RESOLVE = ("hydra",)


def _options() -> list[tuple[str, str, str]]:
    cases = []
    for group, entries in GROUPS.items():
        for f in sorted((CONF / group).glob("*.yaml")):
            # An experiment that sets a task belongs to predict.py, the others to train.py.
            uses = (["predict"] if "override /task" in f.read_text() else entries) if group == "experiment" else entries
            cases += [(entry, group, f.stem) for entry in uses]
    return cases


def test_every_group_has_options():
    for group in GROUPS:
        if group == "experiment":
            continue
        assert list((CONF / group).glob("*.yaml")), f"config group {group} is empty"


@pytest.mark.parametrize(("entry", "group", "option"), _options())
def test_option_composes(compose, entry, group, option):
    try:
        cfg = compose(entry, [f"{group}={option}"])
    except ConfigCompositionException as exc:
        raise AssertionError(f"{group}={option} does not compose with {entry}: {exc}") from exc
    container = OmegaConf.to_container(cfg, resolve=False)
    assert group == "experiment" or group in container
    for key in cfg:
        if key not in _SKIP_RESOLVE:
            OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]


@pytest.mark.parametrize("entry", ["train", "predict"])
def test_unknown_key_is_an_error(compose, entry):
    with pytest.raises(ConfigCompositionException, match="no_such_key"):
        compose(entry, ["trainer.no_such_key=1"])
    with pytest.raises(ConfigCompositionException, match="no_such_option"):
        compose(entry, ["data=no_such_option"])

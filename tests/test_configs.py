"""Every option of every config group composes with the real Hydra config, resolves, and builds
what it names (its ``_target_``, or for ``task`` the module that runs it); every experiment
composes and builds its model and data; unknown keys and options fail with Hydra's error."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import hydra
import pytest
import pytorch_lightning as pl
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import Logger

from inpaintaff.utils.instantiate import instantiate_group

CONF = Path(__file__).resolve().parents[1] / "inpaintaff" / "conf"
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
# Hydra's own settings (run folders, the multirun callback): they take effect only inside a Hydra
# run, which tests/test_entrypoints.py starts.
NOT_COMPOSED_HERE = {"hydra"}
# Options with a mandatory value only the user can give (``???`` in the YAML).
USER_VALUES = {("data", "folder"): ["data.images=/my/images"],
               ("experiment", "inpaintaff_fast_cpu"): ["task.foreground.dir=/my/foreground"]}


def _sets_task(experiment: Path) -> bool:
    """Whether an experiment (or one it builds on) sets a task: it belongs to predict.py then."""
    if "override /task" in experiment.read_text():
        return True
    bases = [d for d in OmegaConf.load(experiment).get("defaults") or [] if isinstance(d, str)]
    return any((experiment.parent / f"{b}.yaml").exists() and _sets_task(experiment.parent / f"{b}.yaml")
               for b in bases)


def _options() -> list[tuple[str, str, str]]:
    cases = []
    for group, entries in GROUPS.items():
        for f in sorted((CONF / group).glob("*.yaml")):
            uses = (["predict"] if _sets_task(f) else entries) if group == "experiment" else entries
            cases += [(entry, group, f.stem) for entry in uses]
    return cases


def _resolved(cfg: DictConfig, entry: str, overrides: list[str]) -> dict:
    """The config with every interpolation resolved, ``${hydra:...}`` ones included: those see
    the Hydra settings the same overrides give (``paths.output_dir`` is set by the fixture)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        full = hydra_compose(entry, overrides=[f"paths.root_dir={cfg.paths.root_dir}", *overrides],
                             return_hydra_config=True)
    HydraConfig.instance().set_config(full)
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    finally:
        HydraConfig.instance().cfg = None
        GlobalHydra.instance().clear()


def _check_model_and_data(cfg: DictConfig, fit: bool) -> None:
    """Build ``cfg.model`` and ``cfg.data`` as train.py does; with ``fit``, they must fit each other."""
    data = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, _convert_="all")
    assert isinstance(data, pl.LightningDataModule) and isinstance(model, pl.LightningModule)
    if not fit:
        return
    wanted = getattr(model, "train_mode", None)
    if wanted:
        assert data.train_mode == wanted, f"{type(model).__name__} needs data.train_mode={wanted}"
    if getattr(model, "needs_labels", False):
        assert data.train_mode == "labeled", f"{type(model).__name__} needs data.train_mode=labeled"


def _check_trainer(cfg: DictConfig) -> None:
    """Every key of ``cfg.trainer`` is a Trainer argument; single-device CPU-able trainers are built."""
    cls = hydra.utils.get_class(cfg.trainer._target_)
    params = set(inspect.signature(cls.__init__).parameters)
    unknown = {k for k in cfg.trainer if k != "_target_"} - params
    assert not unknown, f"not Trainer arguments: {sorted(unknown)}"
    if cfg.trainer.accelerator in ("cpu", "auto") and int(cfg.trainer.devices) == 1:
        trainer = hydra.utils.instantiate(cfg.trainer, accelerator="cpu", logger=False)
        assert isinstance(trainer, pl.Trainer)


def test_every_config_group_is_covered():
    """A config group added under conf/ without a place in GROUPS would go untested."""
    folders = {p.name for p in CONF.iterdir() if p.is_dir()}
    assert folders - NOT_COMPOSED_HERE == set(GROUPS)


@pytest.mark.parametrize(("entry", "group", "option"), _options())
def test_option_composes_and_builds(compose, entry, group, option):
    overrides = [f"{group}={option}", *USER_VALUES.get((group, option), [])]
    try:
        cfg = compose(entry, overrides)
    except ConfigCompositionException as exc:
        raise AssertionError(f"{group}={option} does not compose with {entry}: {exc}") from exc
    _resolved(cfg, entry, overrides)
    if group == "data":
        data = hydra.utils.instantiate(cfg.data)
        assert isinstance(data, pl.LightningDataModule)
        assert data.dataset == (cfg.data.dataset or Path(str(cfg.data.get("images"))).name)
    elif group == "model":
        _check_model_and_data(cfg, fit=False)  # the default data serve raw crops, not every model's
    elif group == "experiment" and entry == "train":
        _check_model_and_data(cfg, fit=True)
    elif group == "task" or (group == "experiment" and entry == "predict"):
        module = importlib.import_module(f"inpaintaff.tasks.{cfg.task.name}")
        assert callable(getattr(module, "run", None)), f"inpaintaff.tasks.{cfg.task.name} has no run(cfg)"
        if group == "task":
            assert cfg.task.name == option, f"task={option} names task {cfg.task.name!r}"
    elif group == "trainer":
        _check_trainer(cfg)
    elif group in ("logger", "callbacks"):
        built = instantiate_group(cfg.get(group))
        n_entries = sum(isinstance(v, DictConfig) and "_target_" in v for v in (cfg.get(group) or {}).values())
        kind = Logger if group == "logger" else pl.Callback
        assert len(built) == n_entries and all(isinstance(b, kind) for b in built)
        assert group == "callbacks" or built, f"logger={option} builds no logger"
    elif group == "paths":
        paths = OmegaConf.to_container(cfg.paths, resolve=True)
        assert set(paths) >= {"root_dir", "data_dir", "log_dir", "output_dir"}
        assert all(isinstance(v, str) and v for v in paths.values())


@pytest.mark.parametrize("entry", ["train", "predict"])
def test_unknown_key_is_an_error(compose, entry):
    with pytest.raises(ConfigCompositionException, match="no_such_key"):
        compose(entry, ["trainer.no_such_key=1"])
    with pytest.raises(ConfigCompositionException, match="no_such_key"):
        compose(entry, ["data.no_such_key=1"])
    with pytest.raises(ConfigCompositionException, match="no_such_option"):
        compose(entry, ["data=no_such_option"])


def test_an_added_key_the_target_does_not_take_fails_to_build(compose):
    """Keys forced in with ``+`` still reach the constructor, which rejects them."""
    cfg = compose("train", ["model=fgnet_cpu", "+model.no_such_arg=1"])
    with pytest.raises(Exception, match="no_such_arg"):
        hydra.utils.instantiate(cfg.model, _convert_="all")


def test_distill_tuned_spends_fgnets_labels(compose):
    """DISTILL-TUNED and FGNET learn from the same labeled crop, both started from the student: the
    pair spends one label budget, not two."""
    tuned, fgnet = (compose("train", [f"experiment={name}"]) for name in ("hela_distill_tuned_cpu", "hela_fgnet_cpu"))
    for key in ("train_mode", "splits.train", "label_frames", "max_instances", "crop_size"):
        assert OmegaConf.select(tuned.data, key) == OmegaConf.select(fgnet.data, key), key
    assert tuned.seed == fgnet.seed
    assert tuned.model.init_from == fgnet.model.init_from and tuned.model.init_from.endswith("hela_distill_cpu.ckpt")
    assert tuned.model._target_.endswith("AffNetModule")


def test_the_shared_data_is_one_setting(compose, monkeypatch, tmp_path):
    """``INPAINTAFF_SHARED_DATA`` moves every data config that reads the shared data, and the
    Python side (``shared_data_dir``) the same way."""
    from inpaintaff.utils.resolvers import SHARED_DATA_ENV, shared_data_dir

    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    hela = compose("predict", ["data=shared_hela"])
    dsb = compose("predict", ["data=dsb2018"])
    assert Path(hela.data.root) == tmp_path == shared_data_dir()
    assert Path(dsb.data.images) == tmp_path / "dsb2018" / "images"
    assert Path(dsb.data.masks) == tmp_path / "dsb2018" / "masks"

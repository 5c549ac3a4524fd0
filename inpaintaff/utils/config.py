"""Task configs as typed objects: a dataclass per task says which keys exist and their types; the
defaults are written once, in ``conf/task/<name>.yaml``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


def typed(node: DictConfig | Mapping[str, Any], cls: type[T], where: str = "task") -> T:
    """``node`` (resolved) as an instance of the dataclass ``cls``; an unknown or missing key, or a
    value of the wrong type, is an error naming ``where`` and the key."""
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), node))  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or getattr(exc, "key", None)
        raise ValueError(f"{where}: {type(exc).__name__} at {key!r}: {exc}".split("\n")[0]) from None


def check_threads(n: int | None, key: str = "task.torch_threads") -> None:
    """A thread count is null (torch's default) or a number >= 1; else an error naming ``key``."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"{key} must be a number >= 1, or null for torch's default, got {n!r}")

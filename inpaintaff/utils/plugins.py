"""Parts chosen by ``_target_`` in the YAML (the plug points of docs/layout.md): one class of the
user's, built with the mapping's other keys as its parameters, checked against the plug point's
``Protocol``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hydra


def is_target(spec: Any) -> bool:
    """Whether ``spec`` chooses a class by ``_target_`` (a mapping holding that key)."""
    return isinstance(spec, Mapping) and "_target_" in spec


def target_name(spec: Mapping[str, Any]) -> str:
    """The class name of a ``_target_`` spec (``my.pkg.EdgeForeground`` -> ``EdgeForeground``)."""
    return str(spec["_target_"]).rsplit(".", 1)[-1]


def instantiate_target(spec: Mapping[str, Any], key: str, protocol: type, contract: str) -> Any:
    """``spec``'s ``_target_`` class built with the other keys; an error naming ``key`` when the class
    cannot be imported or built, or builds something that does not follow ``protocol`` (a
    ``runtime_checkable`` Protocol; ``contract`` says in words what it asks)."""
    spec = dict(spec)
    target = spec.get("_target_")
    if not target:
        raise ValueError(f"{key}: a mapping needs _target_ (the class to build), got keys {sorted(spec)}")
    try:
        built = hydra.utils.instantiate(spec, _convert_="all")
    except Exception as exc:  # hydra wraps import and argument errors alike
        raise ValueError(f"{key}: cannot build {target}: {exc}".split("\n")[0]) from exc
    if not isinstance(built, protocol):
        raise TypeError(f"{key}: {target} built a {type(built).__name__}; {contract}")
    return built

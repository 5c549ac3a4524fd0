"""What shaped a result: settings, the content of its inputs and of its checkpoints.

A kept result is reused only when its record equals the record a new run would write: the same
settings, the same input bytes (SHA-1 of each file) and the same checkpoints (SHA-1). Paths do
not count; a renamed but identical file still matches, an edited one in place does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from inpaintaff.utils.errors import InputError


def file_sha1(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-1 of a file's bytes (16 hex digits)."""
    h = hashlib.sha1()
    if not Path(path).is_file():
        raise InputError(path, "file not found (an input of this result)")
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()[:16]


@lru_cache(maxsize=64)
def _cached_sha1(path: str, mtime_ns: int, size: int) -> str:
    return file_sha1(path)


def content_sha1(path: str | Path) -> str:
    """SHA-1 of a file, computed once per file version (path, modification time, size) in a process:
    the planes of a stack file, and every record naming one checkpoint, share it."""
    if not Path(path).is_file():
        raise InputError(path, "file not found (an input of this result)")
    st = Path(path).stat()
    return _cached_sha1(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)


def source_settings(source: Any) -> dict:
    """How a frame source turns a file into an image (``data.normalize``, ``data.channel``,
    ``data.planes``): with the file's SHA-1, what the input of a result is."""
    norm = getattr(source, "normalize", None)
    out = {"normalize": None if norm is None else {k: float(v) for k, v in dict(norm).items()},
           "channel": getattr(source, "channel", None)}
    if getattr(source, "planes", None) is not None:  # absent from records made before stacks were read
        out["planes"] = source.planes
    return out


def make_record(settings: Mapping[str, Any], inputs: Mapping[str, str | Path | None],
                checkpoints: Mapping[str, str | Path | None]) -> dict:
    """The record of a result: ``settings`` as JSON values, inputs and checkpoints by content."""
    return {
        "settings": json.loads(json.dumps(dict(settings), default=str, sort_keys=True)),
        "inputs": {k: None if p is None else content_sha1(p) for k, p in sorted(inputs.items())},
        "checkpoints": {k: None if p is None else content_sha1(p) for k, p in sorted(checkpoints.items())},
    }


def differences(saved: Mapping[str, Any] | None, now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """What differs between a kept record and the one a new run would write, one line per key
    (``settings.alpha: 2.0 in the file, 3.0 now``)."""
    if saved is None:
        return [f"{prefix or 'record'}: none in the file"]
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key, "<absent>"), now.get(key, "<absent>")
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += differences(a, b, name)
        elif a != b:
            out.append(f"{name}: {a} in the file, {b} now")
    return out

"""One run at a time per output folder: ``<folder>/.inpaintaff.lock`` names the run that holds it.

Two runs writing partial results into one folder would each count patches the other counted (and
every later run would stop on that), so a second run stops at once with an error naming the first:
its pid, host, start time and command. A lock left by a process that died on this host (``kill
-9``, a crash of the machine) is taken over with a warning; one of another host is only reported
(whether that process lives cannot be told from here). The lock is re-entrant within a process
(a task running a sub-task into the same folder). Take it in the launching process only: the
processes Lightning starts for ``trainer.devices=N`` belong to the same run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)

LOCK_NAME = ".inpaintaff.lock"
_held: dict[Path, int] = {}  # folders this process holds, with how many times


def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), which tells a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    now = _process_start(pid)
    return start is None or now is None or now == start


def _describe(owner: dict) -> str:
    started = owner.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return (f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')}, started {when}"
            + (f" ({owner['command']})" if owner.get("command") else ""))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # half written, or not ours


def _create(path: Path, owner: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        json.dump(owner, fh)
    return True


def acquire(folder: str | Path, what: str) -> Path:
    """Lock ``folder`` for this process (see the module's doc); returns the lock file's path."""
    folder = Path(folder).resolve()
    if folder in _held:
        _held[folder] += 1
        return folder / LOCK_NAME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    host = socket.gethostname()
    me = {"pid": os.getpid(), "host": host, "started": time.time(), "pid_start": _process_start(os.getpid()),
          "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]])[:500], "what": what}
    for _ in range(3):
        if _create(path, me):
            _held[folder] = 1
            return path
        owner = _read(path)
        if owner is None:  # released in between
            continue
        pid = owner.get("pid")
        if owner.get("host") == host and isinstance(pid, int) and not _alive(pid, owner.get("pid_start")):
            if _read(path) == owner:  # still the dead run's (not one another run took over just now)
                log.warning("%s: taking over the lock of a run that is gone (%s)", folder, _describe(owner))
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            continue
        raise InputError(path, f"another run is writing into {folder} ({_describe(owner) if owner else 'unknown'}):"
                         f" wait for it to end, or choose another output folder for {what}; if no such run "
                         f"is going on, delete this lock file")
    raise InputError(path, "could not lock this folder (other runs kept taking it): try again")


def release(folder: str | Path) -> None:
    folder = Path(folder).resolve()
    n = _held.get(folder, 0)
    if n > 1:
        _held[folder] = n - 1
        return
    _held.pop(folder, None)
    path = folder / LOCK_NAME
    owner = _read(path)
    if owner is not None and owner.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str, hold: bool = True) -> Iterator[Path | None]:
    """Hold the lock of ``folder`` during the block (``hold=False``: do nothing, e.g. in rank > 0)."""
    if not hold:
        yield None
        return
    path = acquire(folder, what)
    try:
        yield path
    finally:
        release(folder)


def launching_process() -> bool:
    """Whether this is the process that launched the run (global rank 0 by the environment; the
    processes ``strategy=ddp`` starts, or a scheduler's further tasks, have a rank above 0)."""
    from lightning_fabric.utilities.rank_zero import _get_rank

    return (_get_rank() or 0) == 0 and int(os.environ.get("NODE_RANK") or 0) == 0

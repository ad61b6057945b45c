"""File locks that keep concurrent muse processes apart.

Two kinds, both `flock` locks that the system releases when their process ends, however it
ends (an exit, a crash, kill -9, an OOM kill), so a lock never outlives its holder:

* `exclusive`: wait for your turn (one process creates a new tracking database);
* `training`: refuse at once when another live process holds it (one process trains a run:
  `ckpt_path=last` must not attach a second process to a run that is still training).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from muse.errors import MuseError


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made if needed), waiting while another process has it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


class RunInUse(MuseError):
    """Another live process is training the run."""


@contextmanager
def training(path: Path, run_id: str) -> Iterator[None]:
    """Hold run `run_id`'s lock file `path` while this process trains it.

    RunInUse if another live process holds it; the file then says which one (pid and host).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise RunInUse(f"run {run_id} is still training in another process "
                           f"({_holder(handle.read())}; lock {path}); it is not resumed while "
                           "that process lives: wait for it to end, or stop it and resume "
                           "then") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
        handle.flush()
        yield


def _holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {holder['pid']} on {holder['host']}"
    except (ValueError, KeyError, TypeError):
        return "a process that left no pid"

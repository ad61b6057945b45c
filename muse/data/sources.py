"""Finding the HDF5 store a run trains on: a prepared store, a package to prepare, or the demo."""

from __future__ import annotations

import logging
from pathlib import Path

from muse.data.demo import ensure_demo
from muse.data.prepare import prepare, store_path

log = logging.getLogger(__name__)


def store_for(task: str, data_dir: str | Path, package: str | Path | None = None) -> Path:
    """The task's store in `data_dir`, preparing `package` (or the synthetic demo) if needed.

    A package is prepared on every call: that is free when it has not changed since.
    """
    data_dir = Path(data_dir)
    if package is not None:
        return prepare(Path(package), data_dir, tasks=[task])[task]
    path = store_path(data_dir, task)
    if not path.exists():
        log.warning("No prepared %s store in %s: generating and preparing the synthetic demo "
                    "MuSe-CaR there first (set data.package=/path/to/muse2020 for the real data)",
                    task, data_dir)
        ensure_demo(data_dir)
    return path

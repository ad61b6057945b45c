"""Finding the HDF5 store a run trains on: a prepared store, a package to prepare, or the demo.

The demo is generated only where it harms nothing (`muse.store.demo`): a data directory that
lacks the task's store but holds other data is an error that says how to prepare the store.
"""

from __future__ import annotations

import logging
from pathlib import Path

from muse.errors import MuseError
from muse.locks import exclusive
from muse.store.demo import ensure_demo, foreign_contents
from muse.store.prepare import prepare, store_path

log = logging.getLogger(__name__)

LOCK_FILE = ".prepare.lock"


def store_for(task: str, data_dir: str | Path, package: str | Path | None = None) -> Path:
    """The task's store in `data_dir`, preparing `package` (or the synthetic demo) if needed.

    A package is prepared on every call: that is free when it has not changed since.
    """
    data_dir = Path(data_dir)
    path = store_path(data_dir, task)
    if package is None and path.exists():
        return path
    # Parallel jobs of a sweep share the data directory: one prepares it, the others wait.
    with exclusive(data_dir / LOCK_FILE):
        if package is not None:
            return prepare(Path(package), data_dir, tasks=[task])[task]
        if not path.exists():
            foreign = foreign_contents(data_dir)
            if foreign:
                raise MuseError(
                    f"no prepared {task} store in {data_dir} ({path.name} is missing). That "
                    f"folder holds other data ({', '.join(foreign)}), so the synthetic demo is "
                    f"not made there. Prepare the store from the challenge package: muse "
                    f"prepare --package /path/to/muse2020 --out {data_dir} --tasks {task} "
                    "(or train with data.package=/path/to/muse2020); for the demo, set "
                    "data.dir to an empty folder")
            log.warning("No prepared %s store in %s: generating and preparing the synthetic "
                        "demo MuSe-CaR there first (set data.package=/path/to/muse2020 for the "
                        "real data)", task, data_dir)
            ensure_demo(data_dir)
    return path

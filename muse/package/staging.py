"""Writing a package folder atomically: into a staging folder beside it, renamed into place.

The synthetic generator and the extraction from media both write whole packages; a run that
fails or is interrupted must never leave a half package at the destination that looks whole.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(out: Path, refuse: Callable[[str], Exception]) -> Iterator[Path]:
    """Yield an empty staging folder that becomes `out` when the block ends without error.

    `out` must be new or an empty folder, else `refuse(message)` is raised; on any error the
    staging folder is removed and `out` is left as it was.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise refuse(f"{out} already exists and is not empty; choose a new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed run of this very process id
    staging.mkdir()
    try:
        yield staging
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

"""What train.py and evaluate.py share around Hydra: a muse error ends the command in one line.

Hydra prints any exception of a task function under a traceback. A `MuseError` is a message
for the user, not a bug, so it is printed alone (`train.py: error: <message>`) and the command
exits with status 1; `HYDRA_FULL_ERROR=1` shows the whole traceback instead, as Hydra does. In
a multirun the error is left to the sweep's summary (`muse.runs.multirun`), which lists failed jobs.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from muse.errors import MuseError


def one_line_errors(program: str) -> Callable[[Callable[[DictConfig], Any]],
                                              Callable[[DictConfig], Any]]:
    """Decorate a Hydra task function so that its MuseErrors print as one line (module doc)."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
        @functools.wraps(task)
        def run(cfg: DictConfig) -> Any:
            try:
                return task(cfg)
            except MuseError as error:
                if os.environ.get("HYDRA_FULL_ERROR") == "1" or _in_multirun():
                    raise
                print(f"{program}: error: {' '.join(str(error).split())}", file=sys.stderr,
                      flush=True)
                raise SystemExit(1) from None

        return run

    return decorate


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN

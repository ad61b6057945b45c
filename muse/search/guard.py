"""`python train.py hparams_search=...` refuses with the command that runs the search.

A search config composed into `train.py` would otherwise train once with the model's defaults
and look like a search. Every search file installs this Hydra callback; the search itself
composes its trials with Hydra's compose API, which runs no callbacks. Hydra turns an exception
in a callback into a warning, so the refusal is a SystemExit (status 1, the message on stderr).
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SearchOnly(Callback):
    """Stops `train.py` (single run or `-m`) that was handed a search config."""

    def _refuse(self, config: DictConfig) -> None:
        name = config.hydra.runtime.choices.get("hparams_search")
        raise SystemExit(f"train.py: error: hparams_search={name} is an Optuna search, which "
                         f"train.py does not run: python search.py hparams_search={name} "
                         "[overrides]")

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._refuse(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._refuse(config)

"""A search space of conf/hparams_search: each parameter an Optuna distribution, a trial's
values the Hydra overrides that train it.

`hparams_search.params` maps a config key (`model.optimizer.lr`) or a config group
(`features`) to one of Optuna's suggestions:

    {type: float, low: 1.0e-4, high: 1.0e-2, log: true}   # trial.suggest_float (step: ...)
    {type: int, low: 32, high: 128, step: 32}             # trial.suggest_int (log: ...)
    {type: categorical, choices: [10, 25, 50]}            # trial.suggest_categorical

A parameter the composed training config does not have, or a spec Optuna would refuse, is a
MuseError naming the search file, before any trial starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from muse.errors import MuseError

# The keys each kind takes: required, then optional.
KINDS: dict[str, tuple[set[str], set[str]]] = {
    "float": ({"low", "high"}, {"log", "step"}),
    "int": ({"low", "high"}, {"log", "step"}),
    "categorical": ({"choices"}, set()),
}
_MISSING = object()


def override_text(name: str, value: Any) -> str:
    """`name=value` as the Hydra command line writes it (true/false/null, floats by repr)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    else:
        text = repr(value) if isinstance(value, float) else str(value)
    return f"{name}={text}"


@dataclass(frozen=True)
class Param:
    """One searched parameter: its config key, kind and Optuna arguments."""

    name: str
    kind: str
    args: dict[str, Any]

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "float":
            return trial.suggest_float(self.name, **self.args)
        if self.kind == "int":
            return trial.suggest_int(self.name, **self.args)
        return trial.suggest_categorical(self.name, self.args["choices"])


class SearchSpace:
    """The parameters of one search file, checked against the training config they change."""

    def __init__(self, params: dict[str, dict], cfg: DictConfig, groups: set[str],
                 source: Path) -> None:
        """`cfg`: the training config the values change; `groups`: its config groups."""
        if not params:
            raise MuseError(f"{source}: hparams_search.params is empty: nothing to search")
        self.source = source
        self.params = [self._param(name, dict(spec), cfg, groups)
                       for name, spec in params.items()]

    def _param(self, name: str, spec: dict, cfg: DictConfig, groups: set[str]) -> Param:
        where = f"{self.source}: hparams_search.params.{name}"
        if name not in groups and OmegaConf.select(cfg, name, default=_MISSING) is _MISSING:
            raise MuseError(f"{where}: the training config has no key or group {name!r}")
        kind = spec.pop("type", None)
        if kind not in KINDS:
            raise MuseError(f"{where}: type must be one of {', '.join(KINDS)}, not {kind!r}")
        required, optional = KINDS[kind]
        missing, unknown = required - set(spec), set(spec) - required - optional
        if missing or unknown:
            raise MuseError(f"{where}: a {kind} parameter takes {', '.join(sorted(required))}"
                            + (f" (and {', '.join(sorted(optional))})" if optional else "")
                            + f"; missing {sorted(missing)}, unknown {sorted(unknown)}")
        param = Param(name, kind, spec)
        try:  # Optuna's own checks (low < high, log with a positive low, step with log, ...)
            self._distribution(param)
        except (ValueError, TypeError) as error:
            raise MuseError(f"{where}: {error}") from None
        if kind == "categorical":
            parser = OverridesParser.create()
            for choice in spec["choices"]:
                text = override_text(name, choice)
                if parser.parse_override(text).value() != choice:
                    raise MuseError(f"{where}: the choice {choice!r} reads back as another "
                                    f"value from the override {text!r}")
        return param

    @staticmethod
    def _distribution(param: Param) -> optuna.distributions.BaseDistribution:
        if param.kind == "float":
            return optuna.distributions.FloatDistribution(**param.args)
        if param.kind == "int":
            return optuna.distributions.IntDistribution(**param.args)
        return optuna.distributions.CategoricalDistribution(param.args["choices"])

    def suggest(self, trial: optuna.Trial) -> list[str]:
        """The trial's values, as the overrides of its training run."""
        return [override_text(param.name, param.suggest(trial)) for param in self.params]

    def describe(self) -> str:
        """The space as text, kept with a study so that a changed space is noticed."""
        return json.dumps({p.name: {"type": p.kind, **p.args} for p in self.params},
                          sort_keys=True)

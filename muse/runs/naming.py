"""Run names that tell runs apart in the MLflow runs table.

A run is named `<model>-<features>-s<seed>`, followed by a short form of the command-line
overrides that change what it computes: `lstm_att-ge_ft-s0 lr=0.001`. Overrides the name
already says (task, model, features, seed, a sweep's row), and those that only change where or
how fast a run goes (paths, logging, resuming, devices), are left out. With more than
`MAX_SHOWN` of them, or a name past `MAX_LENGTH`, the first ones are shown with the count of
the others and the run's config hash: `lstm_att-ge_ft-s0 k0=1 k1=1 k2=1 k3=1 +2 #fedcba`.
"""

from __future__ import annotations

from collections.abc import Iterable

# Choices the name says itself (`model=e2e`; not `model.optimizer.lr=...`), or that pick the
# model and features it says (a sweep's row).
_NAMED = ("task", "model", "features", "seed", "sweep", "row")
# Where or how fast a run goes, not what it computes (as muse.runs.tracking leaves out of the
# config hash), and an Optuna search's own settings (its trials are told apart by their tag).
_PLACE = ("paths", "hydra", "logger", "ckpt_path", "skip_finished", "study", "hparams_search",
          "data.dir", "data.num_workers", "trainer.enable_progress_bar", "trainer.accelerator",
          "trainer.devices")
MAX_SHOWN = 4
MAX_LENGTH = 80
HASH_SHOWN = 6


def base_name(model: str, features: str, seed: object) -> str:
    return f"{model}-{features}-s{seed}"


def key_of(override: str) -> str:
    """`+model.x=1` -> `model.x`; `~trainer.gradient_clip_val` -> `trainer.gradient_clip_val`."""
    return override.split("=", 1)[0].lstrip("+~")


def telling(overrides: Iterable[str]) -> list[str]:
    """The overrides a name shows, in command-line order."""
    kept = []
    for override in overrides:
        key = key_of(override)
        if key in _NAMED or any(key == name or key.startswith((f"{name}.", f"{name}/"))
                                for name in _PLACE):
            continue
        kept.append(override)
    return kept


def short_forms(overrides: list[str]) -> list[str]:
    """`model.optimizer.lr=0.001` -> `lr=0.001`: the last part of each key, or as many parts
    as make it unique among the overrides shown."""
    keys = [key_of(o).split(".") for o in overrides]
    forms = []
    for override, parts in zip(overrides, keys, strict=True):
        value = override.split("=", 1)[1] if "=" in override else ""
        sign = "~" if override.startswith("~") else ""
        depth = 1
        while depth < len(parts) and sum(
                other[-depth:] == parts[-depth:] for other in keys) > 1:
            depth += 1
        short = ".".join(parts[-depth:])
        forms.append(f"{sign}{short}" if sign else f"{short}={value}")
    return forms


def run_name(model: str, features: str, seed: object, overrides: Iterable[str],
             config_hash: str) -> str:
    """The run's name: base, the telling overrides, and the config hash when they are many."""
    name = base_name(model, features, seed)
    forms = short_forms(telling(overrides))
    if not forms:
        return name
    full = " ".join([name, *forms])
    if len(forms) <= MAX_SHOWN and len(full) <= MAX_LENGTH:
        return full
    shown = []
    for form in forms[:MAX_SHOWN]:
        if len(" ".join([name, *shown, form])) > MAX_LENGTH - 12:
            break
        shown.append(form)
    return " ".join([name, *shown, f"+{len(forms) - len(shown)}", f"#{config_hash[:HASH_SHOWN]}"])

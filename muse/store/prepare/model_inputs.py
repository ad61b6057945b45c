"""What each model reads by default, from the Hydra configs (conf/model + conf/features).

`muse prepare --check` uses it to say which models could not train on a package as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir

from muse.tasks import TASKS

# The repository's configs, beside the muse package.
CONF_DIR = Path(__file__).resolve().parents[3] / "conf"


@dataclass(frozen=True)
class ModelInputs:
    """A model's default inputs: the sub-challenges it runs on and what it reads there."""

    model: str
    tasks: tuple[str, ...]
    features: tuple[str, ...]
    audio: bool  # raw audio (audio_segments)
    transcripts: bool  # segment transcripts (transcription_segments)


def model_inputs(conf_dir: Path = CONF_DIR) -> list[ModelInputs]:
    """Every model config's default inputs, composed as `python train.py model=<name>` would."""
    # `_lightning.yaml` is the part the neural model configs include, not a model.
    names = sorted(p.stem for p in (conf_dir / "model").glob("*.yaml")
                   if not p.stem.startswith("_"))
    found = []
    with initialize_config_dir(config_dir=str(conf_dir.resolve()), version_base="1.3"):
        for name in names:
            cfg = compose("train", overrides=[f"model={name}"])
            tasks = cfg.model.get("tasks") or list(TASKS)
            features = tuple(cfg.features.names)
            found.append(ModelInputs(
                model=name, tasks=tuple(tasks), features=features,
                audio=bool(cfg.model.get("audio", False)),
                # conf/features/text.yaml: the segment transcripts alone.
                transcripts=cfg.features.name == "text",
            ))
    return found

"""What a run reads, and what must be extracted from new media and prepared to feed it.

From the run's resolved config: the task, the feature sets (early-fused, in order) and whether
the model reads the raw audio (End2You). New media give only what `muse extract` computes
(`EXTRACTABLE`); a run on any other set is refused with the list, before any work. The store
holds the run's feature sets, plus eGeMAPS where they give no 250 ms label steps of their own
(LLD alone is frame-rate, the raw audio has no rows): prepare reads its steps from those rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from muse.package.extract import EXTRACTABLE, NEEDS_WEIGHTS
from muse.predict.errors import PredictError

STEP_SETS = ("egemaps", "fasttext")  # the extracted sets written per 250 ms label step
GRID_SET = "egemaps"  # added when the run reads no step set


@dataclass(frozen=True)
class RunInputs:
    """The task, feature sets and raw-audio need of one run."""

    task: str
    features: tuple[str, ...]
    audio: bool
    sklearn: bool  # a classical baseline (saved with skops), not a Lightning checkpoint

    @property
    def store_features(self) -> tuple[str, ...]:
        """The feature sets to extract and prepare: the run's, and the step grid if needed."""
        if set(STEP_SETS) & set(self.features):
            return self.features
        return (*self.features, GRID_SET)


def run_inputs(config: DictConfig) -> RunInputs:
    """The inputs of a run, from its resolved config."""
    return RunInputs(
        task=str(config.task.name),
        features=tuple(str(name) for name in config.features.names),
        audio=bool(config.data.get("audio", False)),
        sklearn=config.model.get("kind") == "sklearn",
    )


def check_extractable(run_id: str, inputs: RunInputs) -> None:
    """PredictError listing every feature set of the run that new media cannot give."""
    refused = [name for name in inputs.features if name not in EXTRACTABLE]
    if not refused:
        return
    reasons = "; ".join(f"{name} needs {NEEDS_WEIGHTS[name]}" if name in NEEDS_WEIGHTS
                        else f"{name} is no feature set muse extracts" for name in refused)
    raise PredictError(
        f"run {run_id} reads feature set(s) {', '.join(refused)}, which cannot be extracted "
        f"from new media here ({reasons}); muse extracts {', '.join(EXTRACTABLE)}: predict "
        "with a run trained on those, or give --package with every set the run reads")

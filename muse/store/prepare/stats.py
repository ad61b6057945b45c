"""What a prepare run counts and reports: imputed NaN cells, label steps without frames, missing
files, repeated word rows, segments without words, dimensions seen."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from muse.errors import PackageError
from muse.package.reader import FeatureTable
from muse.store.prepare.plan import PreparePlan


@dataclass
class PrepareStats:
    nan_cells: Counter = field(default_factory=Counter)
    empty_steps: Counter = field(default_factory=Counter)  # "<table>/<feature>": zero-filled steps
    duplicate_keys: Counter = field(default_factory=Counter)  # "<alignment>/<feature>": rows
    missing_audio: int = 0
    missing_unaligned: int = 0
    empty_transcripts: int = 0  # segments whose transcript is missing or has no words

    def add_feature(self, plan: PreparePlan, alignment: str, feature: str,
                    table: FeatureTable) -> None:
        """Count NaN cells and fix the dimension of a feature set the layout does not know."""
        if table.nan_cells:
            self.nan_cells[f"{alignment}/{feature}"] += table.nan_cells
        if table.duplicate_keys:
            self.duplicate_keys[f"{alignment}/{feature}"] += table.duplicate_keys
        if plan.dims[(alignment, feature)] is None:
            plan.dims[(alignment, feature)] = table.values.shape[1]

    @staticmethod
    def no_rows_error(plan: PreparePlan, video: int) -> PackageError:
        return PackageError(
            f"{plan.task.folder}: test video {video} has no label files and no aligned feature "
            "was selected to take its rows from")

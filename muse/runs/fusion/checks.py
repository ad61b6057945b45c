"""What members must share to be fused: one task, one store, exactly the same rows.

Each check raises a `FusionError` that names the runs on each side of the difference, so the
user sees which run to leave out.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from muse.errors import FusionError
from muse.runs.fusion.members import Member
from muse.tasks import EVALUATED_PARTITIONS, TASKS


def _named(members: list[Member]) -> str:
    return ", ".join(f"{m.run_id} ({m.name})" for m in members)


def _same(members: list[Member], value: Callable[[Member], str], what: str) -> None:
    groups: dict[str, list[Member]] = {}
    for member in members:
        groups.setdefault(value(member), []).append(member)
    if len(groups) > 1:
        sides = "; ".join(f"{_named(group)}: {what} {key}" for key, group in groups.items())
        raise FusionError(f"runs of different {what}s cannot be fused: {sides}")


def keys(frame: pd.DataFrame, task: str) -> pd.MultiIndex:
    """The rows of a predictions (or labels) frame, as its key columns."""
    return pd.MultiIndex.from_frame(frame[list(TASKS[task].key)].astype("int64"))


def check_members(members: list[Member]) -> str:
    """The members' task, once they are shown to share task, store and keys."""
    if len(members) < 2:
        raise FusionError(f"fusion needs two runs or more, got {len(members)}"
                          + (f": {_named(members)}" if members else ""))
    _same(members, lambda m: m.task, "task")
    _same(members, lambda m: m.data, "store")
    task = members[0].task
    for partition in EVALUATED_PARTITIONS:
        reference = keys(members[0].predictions[partition], task)
        for member in members[1:]:
            found = keys(member.predictions[partition], task)
            if not found.sort_values().equals(reference.sort_values()):
                raise FusionError(
                    f"runs {_named([members[0]])} and {_named([member])} predict different "
                    f"{partition} rows: {len(found.difference(reference))} only in the second, "
                    f"{len(reference.difference(found))} only in the first")
    return task

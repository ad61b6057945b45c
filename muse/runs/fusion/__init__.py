"""Late fusion and seed ensembles (`muse fuse`): finished runs' predictions -> a new run.

Imports flow one way: `run` (the fused run, recorded through `muse.runs.lifecycle` like any
training) -> `members` (a member run's tags, scores and saved devel/test predictions, read
from MLflow), `checks` (members of one task, one store and the same keys), `gold` (the devel
and test labels from the members' store, for the official scores), `methods` (mean, weighted,
learned); `selection` says which runs to fuse (given, filtered, or grouped by configuration
minus the seed for `--seeds`); `tags` marks a fused run for `muse report`.
"""

"""What marks a fused run in MLflow, for `muse fuse` to write and `muse report` to read."""

FUSION_MODEL = "fusion"  # the `model` tag of a fused run
MEMBERS_TAG = "muse.fusion.members"  # JSON: each member's run id, name, model, features, seed
ENSEMBLE_TAG = "muse.fusion.ensemble"  # "true" for a seed ensemble (`muse fuse --seeds`)
METHOD_TAG = "muse.fusion.method"

"""conf/callbacks/: each callback its own file, built with `instantiate`, settings that take
effect, and config hashes (what `skip_finished` finds finished runs by) as they were before."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from composing import compose
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, OnExceptionCheckpoint

from muse.runs.builders import build_callbacks
from muse.runs.tracking import (
    _NOT_HASHED,
    _NOT_HASHED_TRAINER,
    CONFIG_LAYOUT,
    config_hash,
    resolved,
)

ROOT = Path("/tmp/muse")  # composed, never written: config_hash resolves every path


def test_every_callback_is_built_from_its_file(tmp_path: Path) -> None:
    built = build_callbacks(compose("callbacks.early_stopping.patience=4", root=ROOT), tmp_path)
    assert set(built) == {"checkpoint", "early_stopping", "on_exception"}
    best, stop, crash = built["checkpoint"], built["early_stopping"], built["on_exception"]
    assert isinstance(best, ModelCheckpoint) and isinstance(stop, EarlyStopping)
    assert isinstance(crash, OnExceptionCheckpoint)
    assert Path(best.dirpath) == tmp_path and Path(crash.dirpath) == tmp_path
    assert (best.monitor, best.mode, best.save_last, best.filename) == (
        "devel/score", "max", True, "best-{epoch:03d}")
    assert (stop.monitor, stop.patience) == ("devel/score", 4)
    assert crash.filename == "last"


def test_save_last_takes_effect(tmp_path: Path) -> None:
    built = build_callbacks(compose("callbacks.checkpoint.save_last=false", root=ROOT), tmp_path)
    assert built["checkpoint"].save_last is False


def legacy_hash(cfg) -> str:
    """config_hash as it was when the callbacks node held only the checkpoint's monitor, mode
    and save_last and the early-stopping arguments (in today's config layout, whose version is
    hashed too, and without the class paths of the datamodule and the module)."""
    tree = {k: v for k, v in resolved(cfg).items() if k not in _NOT_HASHED}
    tree["config_layout"] = CONFIG_LAYOUT
    tree["trainer"] = {k: v for k, v in tree["trainer"].items() if k not in _NOT_HASHED_TRAINER}
    tree["data"].pop("dir", None)
    tree["data"].pop("num_workers", None)
    tree["data"].pop("_target_")
    tree["model"].get("module", {}).pop("_target_", None)
    checkpoint, stopping = tree["callbacks"]["checkpoint"], tree["callbacks"]["early_stopping"]
    tree["callbacks"] = {
        "checkpoint": {k: checkpoint[k] for k in ("monitor", "mode", "save_last")},
        "early_stopping": {k: stopping[k] for k in ("monitor", "mode", "patience")},
    }
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("overrides", [(), ("task=topic", "model=svm"),
                                       ("experiment=mmt_topic",),
                                       ("callbacks.early_stopping.patience=7",)])
def test_config_hashes_are_those_of_earlier_runs(overrides) -> None:
    cfg = compose(*overrides, root=ROOT)
    assert config_hash(cfg) == legacy_hash(cfg)


def test_what_changes_training_still_changes_the_hash() -> None:
    assert (config_hash(compose("callbacks.early_stopping.patience=7", root=ROOT))
            != config_hash(compose(root=ROOT)))

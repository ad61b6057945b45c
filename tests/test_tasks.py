"""muse.tasks: the sub-challenges' rules, written once, and the configs that name them agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from muse.tasks import ALL_PARTITIONS, EVALUATED_PARTITIONS, MONITOR, MONITOR_MODE, TASKS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_task_configs_agree_with_the_task_rules(name):
    conf = OmegaConf.load(ROOT / "conf" / "task" / f"{name}.yaml")
    task = TASKS[name]
    assert conf.name == task.name
    assert set(conf.scored) == set(task.scored)
    assert set(conf.targets) <= set(task.targets)
    assert (conf.monitor, conf.mode) == (MONITOR, MONITOR_MODE)


def test_partitions_are_named_by_their_use():
    assert ALL_PARTITIONS == ("train", "devel", "test")
    assert EVALUATED_PARTITIONS == ("devel", "test")


def test_rows_are_per_segment_only_for_topic():
    assert {name for name, task in TASKS.items() if task.per_segment} == {"topic"}
    assert TASKS["topic"].key == ("id", "segment_id")
    assert TASKS["wild"].key == TASKS["trust"].key == ("id", "timestamp")


def test_combine_is_the_mean_of_the_parts_means():
    assert TASKS["wild"].combine({"arousal": 0.2, "valence": 0.6}) == pytest.approx(0.4)
    assert TASKS["trust"].combine({"trustworthiness": 0.3, "arousal": 0.9}) == 0.3
    topic = {"topic": 80.0, "arousal": 40.0, "valence": 20.0}
    assert TASKS["topic"].combine(topic) == pytest.approx((80.0 + 30.0) / 2)


def test_combine_scores_a_model_on_the_targets_it_has():
    assert TASKS["topic"].combine({"topic": 70.0}) == 70.0
    assert TASKS["topic"].combine({"arousal": 40.0, "valence": 20.0}) == pytest.approx(30.0)
    assert TASKS["wild"].combine({"valence": 0.5}) == 0.5
    assert TASKS["trust"].combine({"arousal": 0.5}) is None


def test_combine_takes_tensors():
    values = {"topic": torch.tensor(80.0), "arousal": torch.tensor(40.0),
              "valence": torch.tensor(20.0)}
    score = TASKS["topic"].combine(values, lambda xs: torch.stack(xs).mean())
    assert score.item() == pytest.approx(55.0)


def test_nothing_sniffs_columns_to_learn_the_task():
    sniffing = re.compile(r"""["']segment_id["'] in """)
    found = [f"{path}:{n}" for path in sorted((ROOT / "muse").rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if sniffing.search(line)]
    assert found == []

"""The official metrics: hand-computed values, streaming == whole-array, ranking rule, CCC loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score, recall_score

from muse.losses import CCCLoss, ccc_loss
from muse.metrics import (
    StreamingCCC,
    StreamingClassification,
    classification_scores,
    micro_f1,
    official_ccc,
    round_ccc,
    round_percent,
    textbook_ccc,
    topic_ranking,
    topic_score,
    uar,
)

# --- CCC ---------------------------------------------------------------------------------------

# labels x = [1, 2, 3], predictions y = [2, 2, 5]
#   mean_x = 2, mean_y = 3, centred x = [-1, 0, 1], centred y = [-1, -1, 2]
#   sum of centred products = 1 + 0 + 2 = 3
#   official: cov = 3 / 3 = 1, var_x = 2 / 2 = 1, var_y = (1 + 1 + 4) / 2 = 3, gap^2 = 1
#             CCC = 2 * 1 / (1 + 3 + 1) = 0.4
#   textbook: var_x = 2 / 3, var_y = 6 / 3 = 2, CCC = 2 * 1 / (2/3 + 2 + 1) = 6 / 11
X, Y = [1.0, 2.0, 3.0], [2.0, 2.0, 5.0]


def test_official_ccc_by_hand():
    assert official_ccc(X, Y) == pytest.approx(0.4, abs=1e-15)


def test_textbook_ccc_by_hand_and_above_official():
    assert textbook_ccc(X, Y) == pytest.approx(6 / 11, abs=1e-15)
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    y = x + rng.normal(scale=0.5, size=50)
    assert official_ccc(x, y) < textbook_ccc(x, y)
    # Identical series: textbook is 1, the official mix is (N-1)/N.
    assert textbook_ccc(x, x) == pytest.approx(1.0)
    assert official_ccc(x, x) == pytest.approx(49 / 50)


@pytest.mark.parametrize("ccc", [official_ccc, textbook_ccc])
def test_degenerate_ccc_is_zero_not_nan(ccc):
    labels = [0.1, 0.5, -0.3, 0.2]
    assert ccc(labels, [0.3] * 4) == 0.0  # constant prediction
    assert ccc([0.3] * 4, [0.3] * 4) == 0.0  # zero denominator
    assert ccc([0.5], [0.4]) == 0.0  # N < 2
    assert ccc([], []) == 0.0


def test_ccc_rejects_mismatch_and_nan():
    with pytest.raises(ValueError, match="length"):
        official_ccc([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        official_ccc([1.0, float("nan")], [1.0, 2.0])


# --- UAR / F1 / Topic score --------------------------------------------------------------------

# labels [0, 0, 0, 1, 1, 2], predictions [0, 0, 1, 1, 3, 2]; class 3 is only predicted.
#   recall: class 0 = 2/3, class 1 = 1/2, class 2 = 1/1, class 3 = 0 (no support, still counted)
#   UAR = (2/3 + 1/2 + 1 + 0) / 4 = 13/24 -> 54.1666...
#   micro F1 = accuracy = 4 correct of 6 -> 66.666...
LABELS, PREDS = [0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 3, 2]


def test_uar_and_f1_by_hand():
    assert uar(LABELS, PREDS) == pytest.approx(100 * 13 / 24)
    assert micro_f1(LABELS, PREDS) == pytest.approx(100 * 4 / 6)


def test_uar_and_f1_match_sklearn():
    rng = np.random.default_rng(1)
    labels, preds = rng.integers(0, 10, 300), rng.integers(0, 8, 300)
    expected_uar = 100 * recall_score(labels, preds, average="macro", zero_division=0)
    assert uar(labels, preds) == pytest.approx(expected_uar, abs=1e-12)
    assert micro_f1(labels, preds) == pytest.approx(100 * f1_score(labels, preds, average="micro"))


def test_composite_uses_rounded_parts():
    scores = classification_scores(LABELS, PREDS)
    assert scores["f1"] == 66.667
    assert scores["uar"] == 54.167
    # 0.66 * 66.667 + 0.34 * 54.167 = 44.00022 + 18.41678 = 62.417
    assert scores["score"] == 62.417
    assert topic_score(100.0, 50.0) == pytest.approx(83.0)


def test_class_metrics_reject_fractional_ids_and_handle_empty():
    with pytest.raises(ValueError, match="integer"):
        uar([0, 1], [0.5, 1])
    assert uar([], []) == 0.0
    assert micro_f1([], []) == 0.0


def test_rounding_helpers():
    assert round_ccc(0.123456) == 0.1235
    assert round_percent(12.34567) == 12.346


# --- streaming ---------------------------------------------------------------------------------


def _random_batches(seed: int, count: int = 5):
    """Batches of (preds, target, mask) shaped (batch, time), with padding and NaN targets."""
    rng = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        target = torch.rand(4, 30, generator=rng, dtype=torch.float64) * 2 - 1
        preds = (0.6 * target + 0.3 * torch.randn(4, 30, generator=rng) + 0.1).float()
        mask = torch.rand(4, 30, generator=rng) > 0.2
        target[0, :3] = float("nan")
        batches.append((preds, target.float(), mask))
    return batches


def _valid_arrays(batches):
    labels, preds = [], []
    for p, t, m in batches:
        keep = m & ~torch.isnan(t)
        labels.append(t[keep].double().numpy())
        preds.append(p[keep].double().numpy())
    return np.concatenate(labels), np.concatenate(preds)


@pytest.mark.parametrize("textbook", [False, True])
def test_streaming_ccc_equals_functional(textbook):
    batches = _random_batches(seed=2)
    metric = StreamingCCC(textbook=textbook)
    for preds, target, mask in batches:
        metric.update(preds, target, mask)
    value = metric.compute()
    assert isinstance(value, torch.Tensor)
    reference = (textbook_ccc if textbook else official_ccc)(*_valid_arrays(batches))
    assert value.item() == pytest.approx(reference, abs=1e-9)


def test_streaming_ccc_two_process_merge_is_global():
    batches = _random_batches(seed=3, count=6)
    # Give the two "ranks" different label distributions, so per-rank CCCs differ from global.
    batches = [(p + 0.5 * i, t + 0.5 * i, m) for i, (p, t, m) in enumerate(batches)]
    rank0, rank1 = StreamingCCC(), StreamingCCC()
    for preds, target, mask in batches[:3]:
        rank0.update(preds, target, mask)
    for preds, target, mask in batches[3:]:
        rank1.update(preds, target, mask)
    # Clones: torchmetrics caches a computed value, which merge_state would not refresh.
    per_rank_mean = (rank0.clone().compute().item() + rank1.clone().compute().item()) / 2
    rank0.merge_state(rank1)
    merged = rank0.compute().item()
    reference = official_ccc(*_valid_arrays(batches))
    assert merged == pytest.approx(reference, abs=1e-9)
    assert abs(per_rank_mean - reference) > 1e-3


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")  # empty on purpose
def test_streaming_ccc_constant_and_empty_are_zero():
    metric = StreamingCCC()
    assert metric.compute().item() == 0.0  # nothing seen yet
    target = torch.linspace(-1, 1, 40).reshape(2, 20, 1)
    metric.update(torch.full((2, 20, 1), 0.3), target, mask=torch.ones(2, 20))
    assert metric.compute().item() == 0.0
    metric.reset()
    metric.update(target, target)
    assert metric.compute().item() == pytest.approx(39 / 40)


def _class_batches(seed: int, count: int = 4):
    rng = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(16, 5, generator=rng),  # scores over 5 classes, argmax taken
            torch.randint(0, 4, (16,), generator=rng),  # class 4 appears only in predictions
            torch.rand(16, generator=rng) > 0.25,
        )
        for _ in range(count)
    ]


def _class_arrays(batches):
    labels = np.concatenate([t[m].numpy() for _, t, m in batches])
    preds = np.concatenate([s.argmax(-1)[m].numpy() for s, _, m in batches])
    return labels, preds


def test_streaming_classification_equals_functional_and_merges():
    batches = _class_batches(seed=4)
    whole, rank0, rank1 = (StreamingClassification(num_classes=5) for _ in range(3))
    for i, (scores, target, mask) in enumerate(batches):
        whole.update(scores, target, mask)
        (rank0 if i % 2 else rank1).update(scores, target, mask)
    rank0.merge_state(rank1)
    labels, preds = _class_arrays(batches)
    f1, recall = micro_f1(labels, preds), uar(labels, preds)
    for metric in (whole, rank0):
        result = metric.compute()
        assert all(isinstance(value, torch.Tensor) for value in result.values())
        assert result["f1"].item() == pytest.approx(f1, abs=1e-9)
        assert result["uar"].item() == pytest.approx(recall, abs=1e-9)
        assert result["score"].item() == pytest.approx(topic_score(f1, recall), abs=1e-9)


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")  # empty on purpose
def test_streaming_classification_degenerate_and_bad_ids():
    metric = StreamingClassification(num_classes=3)
    empty = metric.compute()
    assert all(value.item() == 0.0 for value in empty.values())
    metric.update(torch.zeros(6, dtype=torch.long), torch.tensor([0, 0, 1, 1, 2, 2]))
    result = metric.compute()
    assert result["f1"].item() == pytest.approx(100 / 3)
    assert result["uar"].item() == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="outside"):
        metric.update(torch.tensor([3]), torch.tensor([0]))
    with pytest.raises(ValueError, match="non-integer"):
        metric.update(torch.tensor([1]), torch.tensor([0.5]))


# --- ranking -----------------------------------------------------------------------------------


def test_topic_ranking_with_ties():
    ranking = topic_ranking(
        {"A": (50.0, 70.0), "B": (50.0, 60.0), "C": (40.0, 70.0), "D": (30.0, 50.0)}
    )
    rows = {row.name: row for row in ranking}
    # emotion ranks: A 1, B 1 (tie shares the best rank), C 3, D 4
    assert [rows[n].emotion_rank for n in "ABCD"] == [1, 1, 3, 4]
    # topic ranks: A 1, C 1, B 3, D 4
    assert [rows[n].topic_rank for n in "ABCD"] == [1, 3, 1, 4]
    # mean ranks A 1, B 2, C 2, D 4: B and C tie, C wins on the better topic rank
    assert [rows[n].mean_rank for n in "ABCD"] == [1.0, 2.0, 2.0, 4.0]
    assert [(row.name, row.place) for row in ranking] == [("A", 1), ("C", 2), ("B", 3), ("D", 4)]


def test_topic_ranking_full_tie_shares_place():
    ranking = topic_ranking({"y": (40.0, 60.0), "x": (40.0, 60.0), "z": (10.0, 10.0)})
    assert [(row.name, row.place) for row in ranking] == [("x", 1), ("y", 1), ("z", 3)]
    with pytest.raises(ValueError, match="finite"):
        topic_ranking({"bad": (math.nan, 1.0)})


# --- CCC loss ----------------------------------------------------------------------------------


def test_ccc_loss_is_one_minus_textbook_ccc_with_mask_and_nan():
    nan = float("nan")
    target = torch.tensor([[0.1, -0.4, 0.7, nan], [0.2, 0.9, -0.1, 0.0]], dtype=torch.float64)
    preds = torch.tensor([[0.0, -0.2, 0.5, 3.0], [0.4, 0.6, 0.1, 9.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    preds.requires_grad_(True)
    loss = ccc_loss(preds, target, mask)
    keep = mask & ~torch.isnan(target)
    expected = 1 - textbook_ccc(target[keep].numpy(), preds[keep].detach().numpy())
    assert loss.item() == pytest.approx(expected, abs=1e-7)
    loss.backward()
    assert torch.isfinite(preds.grad).all()
    assert preds.grad[0, 3] == 0 and preds.grad[1, 3] == 0  # excluded steps get no gradient
    assert CCCLoss()(preds, target, mask).item() == pytest.approx(loss.item())


@pytest.mark.parametrize("target_value", [0.3, -0.5])
def test_ccc_loss_gradient_finite_on_constant_batch(target_value):
    preds = torch.full((8, 10), 0.3, requires_grad=True)
    loss = ccc_loss(preds, torch.full((8, 10), target_value))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(preds.grad).all()
    empty = torch.zeros(3, requires_grad=True)
    ccc_loss(empty, torch.ones(3), mask=torch.zeros(3, dtype=torch.bool)).backward()
    assert torch.equal(empty.grad, torch.zeros(3))


def test_ccc_loss_decreases_under_sgd():
    torch.manual_seed(0)
    inputs = torch.randn(200, 1)
    target = 0.5 * inputs.squeeze(1) + 0.2
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3)
    losses = []
    for _ in range(40):
        optimizer.zero_grad()
        loss = ccc_loss(model(inputs).squeeze(1), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[0] > 1.0  # the initial weight is negative: worse than no agreement
    assert losses[-1] < 0.01

"""The fusion methods on hand-made member predictions: means, devel weights, and a learned
fusion that never predicts a row with a model fitted on that row's labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from muse.errors import FusionError
from muse.metrics.functional import official_ccc
from muse.runs.fusion.methods import TargetInputs, cross_fit, fit_ridge, fuse_target, one_hot


def inputs(devel: list[np.ndarray], labels: np.ndarray, videos: np.ndarray,
           scores: list[float | None] | None = None, classes: bool = False) -> TargetInputs:
    return TargetInputs("arousal", classes, devel, [m[:5] for m in devel], labels, videos,
                        scores or [None] * len(devel))


def test_mean_is_the_members_mean_and_a_class_vote_the_share_of_votes() -> None:
    a, b = np.array([[0.2], [0.4]]), np.array([[0.6], [-0.4]])
    fused = fuse_target("mean", inputs([a, b], np.zeros(2), np.array([1, 2])))
    assert np.allclose(fused.devel, [[0.4], [0.0]])
    votes = [one_hot(np.array([0, 2]), 3), one_hot(np.array([2, 2]), 3),
             one_hot(np.array([0, 1]), 3)]
    fused = fuse_target("mean", inputs(votes, np.zeros(2), np.array([1, 2]), classes=True))
    assert fused.devel.argmax(axis=1).tolist() == [0, 2]
    assert np.allclose(fused.devel[0], [2 / 3, 0, 1 / 3])


def test_weights_follow_the_devel_scores_negative_ones_count_zero() -> None:
    members = [np.full((6, 1), value) for value in (1.0, 2.0, 5.0)]
    fused = fuse_target("weighted", inputs(members, np.zeros(6), np.arange(6),
                                           scores=[0.6, 0.2, -0.3]))
    assert fused.chosen["weights"] == [0.75, 0.25, 0.0]
    assert np.allclose(fused.devel, 0.75 * 1.0 + 0.25 * 2.0)
    with pytest.raises(FusionError, match="no devel arousal score"):
        fuse_target("weighted", inputs(members, np.zeros(6), np.arange(6),
                                       scores=[0.6, None, 0.1]))


def test_learned_never_predicts_a_video_with_a_model_fitted_on_it() -> None:
    """The first column is the video id: each fitted model remembers the videos it saw and
    refuses to predict one of them."""
    rng = np.random.default_rng(0)
    videos = np.repeat(np.arange(10, 17), 30)
    devel = np.column_stack([videos, rng.normal(size=len(videos))])
    test = np.column_stack([np.full(20, 99), rng.normal(size=20)])
    fitted_on: list[set] = []

    def spying_fit(x: np.ndarray, y: np.ndarray):
        seen = set(x[:, 0].tolist())
        fitted_on.append(seen)
        predict = fit_ridge(x[:, 1:], y)

        def checked(rows: np.ndarray) -> np.ndarray:
            assert not seen & set(rows[:, 0].tolist()), "predicted a row it was fitted on"
            return predict(rows[:, 1:])
        return checked

    out, on_test, folds = cross_fit(spying_fit, devel, devel[:, 1] * 0.5, videos, test, False)
    assert folds == 5 and out.shape == (len(videos), 1) and on_test.shape == (20, 1)
    assert len(fitted_on) == 6 and fitted_on[-1] == set(range(10, 17))  # test: all of devel


def test_learned_fusion_of_noise_scores_nothing_on_devel_where_an_in_sample_fit_would() -> None:
    """Noise members and noise labels: fitting on the rows it scores (a leak) would reach a
    high CCC by over-fitting 80 members to 160 rows; out-of-fold it stays near zero."""
    rng = np.random.default_rng(1)
    videos = np.repeat(np.arange(8), 20)
    members = [rng.normal(size=(160, 1)) for _ in range(80)]
    labels = rng.normal(size=160)
    leaked = Ridge(alpha=1.0).fit(np.hstack(members), labels).predict(np.hstack(members))
    assert official_ccc(labels, leaked) > 0.4  # what a leak would score
    fused = fuse_target("learned", inputs(members, labels, videos))
    assert official_ccc(labels, fused.devel[:, 0]) < 0.15
    assert "out-of-fold" in fused.chosen["validation"]


def test_learned_classes_give_probabilities_over_every_class() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, size=120)
    videos = np.repeat(np.arange(6), 20)
    good = one_hot(labels, 3) * 0.8 + 0.2 / 3
    noise = one_hot(rng.integers(0, 3, size=120), 3)
    fused = fuse_target("learned", inputs([good, noise], labels, videos, classes=True))
    assert fused.devel.shape == (120, 3) and np.allclose(fused.devel.sum(axis=1), 1)
    assert (fused.devel.argmax(axis=1) == labels).mean() > 0.9


def test_learned_needs_two_devel_videos() -> None:
    with pytest.raises(FusionError, match="two devel videos"):
        fuse_target("learned", inputs([np.ones((5, 1))] * 2, np.arange(5.0), np.zeros(5)))

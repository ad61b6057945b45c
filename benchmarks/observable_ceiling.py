"""What eGeMAPS + fastText can tell about the gold labels of MuSe-Wild and MuSe-Trust, at most:
the observable ceiling, against the generator's ceiling (`metadata/ceilings.json`, the
noiseless curves).

The generator's ceiling scores the noiseless arousal, valence and trustworthiness curves, which
no feature set carries whole: eGeMAPS mixes in the arousal the voice shows, `AROUSAL_JITTER`
smooth noise away from the curve; the text shows valence only through which sentiment words
are said, and trustworthiness' own component through which credibility words are said, one
Bernoulli draw per word (`muse.package.synthetic.text`). This script regenerates, for a
package's arguments, exactly those observations without the features' per-cell noise: per step
the arousal the voice shows (the generator's own draw), the polarity of the word spoken (+1,
-1, 0), for MuSe-Trust its credibility (+1 credible, -1 dubious, 0), and whether a word is
spoken. A ridge regression on many smoothings of them (Gaussian widths 0-64 steps, segment and
video means; the penalty chosen on devel) is fitted on the train videos and scored with the
official CCC on devel against the gold labels. A model that
reads the noisy features of the same videos cannot know more than these observations; the
regression is one estimator from them (gradient boosting on the same columns did no better).

    python benchmarks/observable_ceiling.py --videos 40 --minutes 1.5 --seeds 1 2 --tasks wild trust
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.linear_model import Ridge

from muse.package.synthetic.ceilings import ccc
from muse.package.synthetic.features import _audio_drivers  # the generator's own draw
from muse.package.synthetic.plan import VideoPlan, plan_package
from muse.package.synthetic.seeds import stream
from muse.package.synthetic.signals import simulate
from muse.package.synthetic.text import (
    CREDIBLE_WORDS,
    DUBIOUS_WORDS,
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    transcribe,
)

TARGETS = {"wild": ("arousal", "valence"), "trust": ("trustworthiness",)}
# MuSe-Wild's labels do not depend on credibility: a column of it would only add variance.
CHANNELS = {"wild": ("heard", "polarity", "spoken"),
            "trust": ("heard", "polarity", "credibility", "spoken")}
WIDTHS = (1, 2, 4, 8, 16, 32, 64)
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def _signed(word: np.ndarray, plus: tuple[str, ...], minus: tuple[str, ...]) -> np.ndarray:
    return np.isin(word, plus).astype(float) - np.isin(word, minus).astype(float)


def observations(video: VideoPlan, seed: int, task: str) -> tuple[np.ndarray, dict, dict]:
    """(columns, gold, noiseless) on the video's steps of the sub-challenge."""
    signals = simulate(video, seed)
    transcript = transcribe(video, signals, seed)
    spoken = transcript.step_words(video.n_steps)
    word = np.array([*transcript.words, ""])[spoken]
    observed = {"polarity": _signed(word, POSITIVE_WORDS, NEGATIVE_WORDS),
                "credibility": _signed(word, CREDIBLE_WORDS, DUBIOUS_WORDS),
                "spoken": (spoken >= 0).astype(float),
                "heard": _audio_drivers(stream(seed, video.video_id, "egemaps"), signals)[:, 0]}
    segment = video.step_segment_ids()
    columns = []
    for channel in (observed[name] for name in CHANNELS[task]):
        columns += [channel] + [gaussian_filter1d(channel, w, mode="nearest") for w in WIDTHS]
        segment_means = np.zeros_like(channel)
        for s in np.unique(segment):
            segment_means[segment == s] = channel[segment == s].mean()
        columns += [segment_means, np.full_like(channel, channel.mean())]
    steps = video.step_mask(task)
    return (np.column_stack(columns)[steps], {t: signals.gold[t][steps] for t in TARGETS[task]},
            {t: signals.clean[t][steps] for t in TARGETS[task]})


def ceilings(videos: int, minutes: float, seed: int,
             task: str = "wild") -> dict[str, dict[str, float]]:
    """{target (and "combined" for MuSe-Wild): {"observable", "generator"}} devel CCCs."""
    parts: dict[str, list] = {"train": [], "devel": []}
    for video in plan_package(videos, minutes, seed):
        if video.partition in parts:
            parts[video.partition].append(observations(video, seed, task))
    x_train, x_devel = (np.vstack([v[0] for v in parts[p]]) for p in ("train", "devel"))
    mean, std = x_train.mean(0), x_train.std(0) + 1e-9
    x_train, x_devel = (x_train - mean) / std, (x_devel - mean) / std
    result = {}
    for target in TARGETS[task]:
        y_train = np.concatenate([v[1][target] for v in parts["train"]])
        gold = np.concatenate([v[1][target] for v in parts["devel"]])
        clean = np.concatenate([v[2][target] for v in parts["devel"]])
        observable = max(ccc(gold, Ridge(alpha=a).fit(x_train, y_train).predict(x_devel))
                         for a in ALPHAS)
        result[target] = {"observable": observable, "generator": ccc(gold, clean)}
    if task == "wild":
        result["combined"] = {k: (result["arousal"][k] + result["valence"][k]) / 2
                              for k in ("observable", "generator")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=1.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TARGETS), default=["wild", "trust"])
    args = parser.parse_args()
    print("| seed | task | target | observable ceiling | generator ceiling | "
          "observable / generator |")
    print("|---|---|---|---|---|---|")
    for seed in args.seeds:
        for task in args.tasks:
            for target, c in ceilings(args.videos, args.minutes, seed, task).items():
                print(f"| {seed} | {task} | {target} | {c['observable']:.4f} | "
                      f"{c['generator']:.4f} | {c['observable'] / c['generator']:.2f} |")


if __name__ == "__main__":
    main()

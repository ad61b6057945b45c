"""What MuSe-Wild's eGeMAPS + fastText can tell about the gold labels, at most: the observable
ceiling, against the generator's ceiling (`metadata/ceilings.json`, the noiseless curves).

The generator's ceiling scores the noiseless arousal and valence curves, which no feature set
carries whole: eGeMAPS mixes in the arousal the voice shows, `AROUSAL_JITTER` smooth noise
away from the curve, and the text shows valence only through which sentiment words are said,
one Bernoulli draw per word (`muse.package.synthetic.text`). This script regenerates, for a
package's arguments, exactly those observations without the features' per-cell noise: per step
the arousal the voice shows (the generator's own draw), the polarity of the word spoken (+1,
-1, 0) and whether a word is spoken. A ridge regression on many smoothings of them (Gaussian
widths 0-64 steps, segment and video means; the penalty chosen on devel) is fitted on the
train videos and scored with the official CCC on devel against the gold labels. A model that
reads the noisy features of the same videos cannot know more than these observations; the
regression is one estimator from them (gradient boosting on the same columns did no better).

    python benchmarks/observable_ceiling.py --videos 40 --minutes 1.5 --seeds 1 2
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
from muse.package.synthetic.text import NEGATIVE_WORDS, POSITIVE_WORDS, transcribe

TARGETS = ("arousal", "valence")
WIDTHS = (1, 2, 4, 8, 16, 32, 64)
ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)


def observations(video: VideoPlan, seed: int) -> tuple[np.ndarray, dict, dict]:
    """(columns, gold, noiseless) on the video's MuSe-Wild steps."""
    signals = simulate(video, seed)
    transcript = transcribe(video, signals, seed)
    spoken = transcript.step_words(video.n_steps)
    word = np.array([*transcript.words, ""])[spoken]
    polarity = (np.isin(word, POSITIVE_WORDS).astype(float)
                - np.isin(word, NEGATIVE_WORDS).astype(float))
    heard = _audio_drivers(stream(seed, video.video_id, "egemaps"), signals)[:, 0]
    segment = video.step_segment_ids()
    columns = []
    for channel in (heard, polarity, (spoken >= 0).astype(float)):
        columns += [channel] + [gaussian_filter1d(channel, w, mode="nearest") for w in WIDTHS]
        segment_means = np.zeros_like(channel)
        for s in np.unique(segment):
            segment_means[segment == s] = channel[segment == s].mean()
        columns += [segment_means, np.full_like(channel, channel.mean())]
    steps = video.step_mask("wild")
    return (np.column_stack(columns)[steps], {t: signals.gold[t][steps] for t in TARGETS},
            {t: signals.clean[t][steps] for t in TARGETS})


def ceilings(videos: int, minutes: float, seed: int) -> dict[str, dict[str, float]]:
    """{target and "combined": {"observable", "generator"}} devel CCCs."""
    parts: dict[str, list] = {"train": [], "devel": []}
    for video in plan_package(videos, minutes, seed):
        if video.partition in parts:
            parts[video.partition].append(observations(video, seed))
    x_train, x_devel = (np.vstack([v[0] for v in parts[p]]) for p in ("train", "devel"))
    mean, std = x_train.mean(0), x_train.std(0) + 1e-9
    x_train, x_devel = (x_train - mean) / std, (x_devel - mean) / std
    result = {}
    for target in TARGETS:
        y_train = np.concatenate([v[1][target] for v in parts["train"]])
        gold = np.concatenate([v[1][target] for v in parts["devel"]])
        clean = np.concatenate([v[2][target] for v in parts["devel"]])
        observable = max(ccc(gold, Ridge(alpha=a).fit(x_train, y_train).predict(x_devel))
                         for a in ALPHAS)
        result[target] = {"observable": observable, "generator": ccc(gold, clean)}
    result["combined"] = {k: (result["arousal"][k] + result["valence"][k]) / 2
                          for k in ("observable", "generator")}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=1.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print("| seed | target | observable ceiling | generator ceiling | observable / generator |")
    print("|---|---|---|---|---|")
    for seed in args.seeds:
        for target, c in ceilings(args.videos, args.minutes, seed).items():
            print(f"| {seed} | {target} | {c['observable']:.4f} | {c['generator']:.4f} | "
                  f"{c['observable'] / c['generator']:.2f} |")


if __name__ == "__main__":
    main()

"""Model quality: each neural baseline at its defaults against a linear model and the ceiling.

For every package seed, a challenge-layout package is generated (`muse synth`) and prepared;
then, per task, each neural baseline is trained at its defaults exactly as
`python train.py task=<task> model=<baseline>` trains it (the Hydra config composed from
conf/, `muse.runs.train.train`), and a linear reference is fitted on the same feature sets:

* MuSe-Wild / MuSe-Trust: a ridge regression per target on the label-aligned rows,
  z-normalised with train statistics, its predictions smoothed over `SMOOTH_STEPS` steps within
  each video; the ridge penalty is chosen on devel (which flatters the reference, not the model).
* MuSe-Topic: a logistic regression per target on each segment's mean feature vector,
  z-normalised with train statistics, C chosen on devel.

Both are scored by the official scorer (`muse.scoring.score_frames`) on devel. The table gives
per task and baseline the devel score, score / linear reference and score / the generator's
ceiling (`metadata/ceilings.json`: the noiseless signal against the gold labels). End2You reads
raw audio, which a linear model cannot: its reference uses its feature sets without the audio.

    python benchmarks/model_quality.py --videos 40 --minutes 1.5 --seeds 1 2

`--set KEY=VALUE` adds a Hydra override to every neural run (e.g. `trainer.max_epochs=5` to
shorten End2You on two cores: `--set-for e2e trainer.max_epochs=5`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from scipy.ndimage import uniform_filter1d
from sklearn.linear_model import LogisticRegression, Ridge

from muse.classical.segments import load_segments
from muse.data.datamodule import CONTINUOUS_TABLE
from muse.package.layout import CEILINGS_FILE
from muse.package.synthetic import synthesize
from muse.runs.train import train
from muse.scoring import score_frames
from muse.store.prepare import prepare
from muse.store.reader import Store
from muse.tasks import TASKS

CONF = str(Path(__file__).parents[1] / "conf")
FEATURES = ["egemaps", "fasttext", "vggface", "au"]
BASELINES = {"wild": ["lstm_att", "e2e"], "trust": ["lstm_att", "e2e", "e2e_multitask"],
             "topic": ["lstm_att", "mmt"]}
SMOOTH_STEPS = 9
RIDGE_ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)
LOGISTIC_CS = (0.001, 0.01, 0.1, 1.0, 10.0)


def config(task: str, baseline: str, data_dir: Path, root: Path, seed: int, extra: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train", overrides=[
            f"task={task}", f"model={baseline}", f"data.dir={data_dir}",
            f"paths.root_dir={root}", f"paths.output_dir={root}/out/{task}-{baseline}",
            f"seed={seed}", "trainer.enable_progress_bar=false", *extra])


def zscore(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, std = train.mean(0), train.std(0)
    std[std == 0] = 1.0
    return [(x - mean) / std for x in (train, *others)]


def ridge_reference(store_path: Path, task: str, features: list[str]) -> dict:
    """Devel scores of a smoothed ridge regression per target on the label-aligned rows."""
    store = Store(store_path)
    offsets = store.read(f"{CONTINUOUS_TABLE}/video_offsets")
    rows = store.rows(CONTINUOUS_TABLE, features)
    x = np.nan_to_num(rows.read(0, int(offsets[-1])).astype(np.float64))
    video = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    part = np.asarray(store.partitions)[video]
    spec = TASKS[task]
    targets = list(spec.scored)
    y = {t: store.read(f"{CONTINUOUS_TABLE}/labels/{t}") for t in targets}
    keys = pd.DataFrame({"id": store.video_ids[video],
                         "timestamp": store.read(f"{CONTINUOUS_TABLE}/timestamp")})
    store.close()
    train, devel = part == "train", part == "devel"
    x_train, x_devel = zscore(x[train], x[devel])
    gold = keys[devel].reset_index(drop=True)
    best: dict | None = None
    for alpha in RIDGE_ALPHAS:
        predictions = gold.copy()
        for target in targets:
            known = ~np.isnan(y[target][train])
            model = Ridge(alpha=alpha).fit(x_train[known], y[target][train][known])
            raw = model.predict(x_devel)
            smoothed = np.empty_like(raw)
            for v in np.unique(video[devel]):
                own = video[devel] == v
                smoothed[own] = uniform_filter1d(raw[own], SMOOTH_STEPS, mode="nearest")
            predictions[f"prediction_{target}"] = smoothed
        labels = gold.assign(**{f"label_{t}": y[t][devel] for t in targets})
        scores = score_frames(task, labels, predictions)
        if best is None or scores["score"] > best["score"]:
            best = scores
    return best


def logistic_reference(store_path: Path, features: list[str]) -> dict:
    """Devel scores of a logistic regression per target on segment means (C chosen on devel)."""
    segments = load_segments(Store(store_path), features)
    train, devel = segments.partitions == "train", segments.partitions == "devel"
    x_train, x_devel = zscore(np.nan_to_num(segments.features[train]),
                              np.nan_to_num(segments.features[devel]))
    keys = pd.DataFrame({"id": segments.video_ids[devel],
                         "segment_id": segments.segment_ids[devel]})
    predictions, labels = keys.copy(), keys.copy()
    for target in TASKS["topic"].scored:
        y_train, y_devel = segments.labels[target][train], segments.labels[target][devel]
        known = y_train >= 0
        fits = [LogisticRegression(C=c, max_iter=2000).fit(x_train[known], y_train[known])
                for c in LOGISTIC_CS]
        chosen = max(fits, key=lambda fit: np.mean(fit.predict(x_devel) == y_devel))
        predictions[f"prediction_{target}"] = chosen.predict(x_devel)
        labels[f"label_{target}"] = y_devel
    return score_frames("topic", labels, predictions)


def headline(task: str, scores: dict) -> dict[str, float]:
    """{measure: value}: the task score (wild, trust); topic and emotion scores (topic)."""
    if task == "topic":
        return {"topic": scores["topic_score"], "emotion": scores["emotion_score"]}
    return {"score": scores["score"]}


def ceiling(task: str, ceilings: dict) -> dict[str, float]:
    devel = ceilings[task]["devel"]
    if task == "wild":
        return {"score": (devel["arousal"] + devel["valence"]) / 2}
    if task == "trust":
        return {"score": devel["trustworthiness"]}
    return {"topic": devel["topic"], "emotion": (devel["arousal"] + devel["valence"]) / 2}


def run_seed(args: argparse.Namespace, seed: int) -> list[dict]:
    work = args.work / f"seed{seed}"
    package = work / "muse2020"
    if not package.exists():
        synthesize(package, videos=args.videos, minutes=args.minutes, seed=seed,
                   features=FEATURES)
    data_dir = work / "data"
    stores = prepare(package, data_dir, tasks=list(BASELINES))
    ceilings = json.loads((package / CEILINGS_FILE).read_text())
    rows = []
    for task, baselines in BASELINES.items():
        if args.tasks and task not in args.tasks:
            continue
        for baseline in baselines:
            if args.baselines and baseline not in args.baselines:
                continue
            extra = list(args.set) + [value for name, value in args.set_for if name == baseline]
            cfg = config(task, baseline, data_dir, work / "runs", seed, extra)
            features = list(cfg.features.names)
            start = time.perf_counter()
            result = train(cfg)
            seconds = time.perf_counter() - start
            reference = (logistic_reference(stores[task], features) if task == "topic"
                         else ridge_reference(stores[task], task, features))
            rows.append({"seed": seed, "task": task, "baseline": baseline,
                         "features": cfg.features.name, "minutes": seconds / 60,
                         "model": headline(task, result.devel),
                         "linear": headline(task, reference), "ceiling": ceiling(task, ceilings),
                         "overrides": extra})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| seed | task | baseline (features) | measure | devel | linear | / linear | "
             "ceiling | / ceiling | train min |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for measure, value in row["model"].items():
            linear, top = row["linear"][measure], row["ceiling"][measure]
            lines.append(
                f"| {row['seed']} | {row['task']} | {row['baseline']} ({row['features']}) | "
                f"{measure} | {value:.4g} | {linear:.4g} | {value / linear:.2f} | {top:.4g} | "
                f"{value / top:.2f} | {row['minutes']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=1.5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tasks", nargs="*", default=None)
    parser.add_argument("--baselines", nargs="*", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--set-for", nargs=2, action="append", default=[],
                        metavar=("BASELINE", "KEY=VALUE"))
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.model_quality"))
    args = parser.parse_args()
    rows = [row for seed in args.seeds for row in run_seed(args, seed)]
    print(table(rows))


if __name__ == "__main__":
    main()

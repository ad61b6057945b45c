"""`muse synth`: the official layout, real dimensions, consistent labels, a planted signal,
determinism and clear refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.io import wavfile

from muse.cli import main as muse_main
from muse.package.layout import (
    CEILINGS_FILE,
    FEATURE_SETS,
    PARTITION_FILE,
    STEP_COLUMNS,
    STEP_MS,
    TOPIC_MAPPING_FILE,
    TOPIC_NAMES,
    UNALIGNED_ONLY,
    WORD_LEVEL_COLUMNS,
    aggregated_file,
    audio_file,
    feature_dir,
    is_word_level,
    label_dir,
    transcript_file,
)
from muse.package.synthetic import SCALES, SynthesisError, synthesize
from muse.package.synthetic import build as synth_build
from muse.package.synthetic.ceilings import ccc, topic_score
from muse.package.synthetic.plan import plan_package
from muse.package.synthetic.text import (
    ADVERT_WORDS,
    CREDIBLE_WORDS,
    DUBIOUS_WORDS,
    FILLER_WORDS,
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    TOPIC_WORDS,
)
from muse.tasks import ALL_PARTITIONS, TASKS

TEST_FEATURES = ["egemaps", "lld", "fasttext", "vggface", "au"]  # as in conftest
TINY = {"videos": 4, "minutes": 0.3, "seed": 3, "features": ["egemaps", "fasttext", "au"]}


def videos(package: Path) -> dict[int, str]:
    frame = pd.read_csv(package / PARTITION_FILE)
    return dict(zip(frame["Id"], frame["Proposal"], strict=True))


def feature(package: Path, task: str, alignment: str, name: str, video: int) -> pd.DataFrame:
    return pd.read_csv(feature_dir(package, task, alignment) / name / f"{video}.csv")


def labels(package: Path, task: str, target: str, video: int) -> pd.DataFrame:
    return pd.read_csv(label_dir(package, task, target) / f"{video}.csv")


def values(frame: pd.DataFrame) -> np.ndarray:
    return frame.drop(columns=[*STEP_COLUMNS, *WORD_LEVEL_COLUMNS], errors="ignore").to_numpy()


def checksum(package: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def alignments(task: str, name: str) -> list[str]:
    aligned = [] if name in UNALIGNED_ONLY else list(TASKS[task].aligned)
    return [*aligned, "unaligned"]


def test_every_documented_path_exists(demo_package: Path) -> None:
    assert (demo_package / TOPIC_MAPPING_FILE).is_file()
    assert (demo_package / CEILINGS_FILE).is_file()
    for task, spec in TASKS.items():
        for partition in ALL_PARTITIONS:
            assert aggregated_file(demo_package, task, partition).is_file()
        for video in videos(demo_package):
            for target in spec.targets:
                assert (label_dir(demo_package, task, target) / f"{video}.csv").is_file()
            for name in TEST_FEATURES:
                for alignment in alignments(task, name):
                    path = feature_dir(demo_package, task, alignment) / name / f"{video}.csv"
                    assert path.is_file(), path
            for segment in labels(demo_package, task, spec.targets[0], video)["segment_id"]:
                assert audio_file(demo_package, task, video, int(segment)).is_file()
                assert transcript_file(demo_package, task, video, int(segment)).is_file()


def test_partitions_and_topic_mapping(demo_package: Path) -> None:
    parts = pd.read_csv(demo_package / PARTITION_FILE)
    assert list(parts.columns) == ["Id", "Proposal"]
    assert len(parts) == 8 and parts["Id"].is_unique
    assert set(parts["Proposal"]) == set(ALL_PARTITIONS)
    assert parts["Id"].max() > len(parts)  # ids are not 1..N
    mapping = pd.read_csv(demo_package / TOPIC_MAPPING_FILE)
    assert list(mapping.columns) == ["class_id", "class_name"]
    assert list(mapping["class_name"]) == list(TOPIC_NAMES)


def test_feature_files_have_the_real_dimensions(demo_package: Path) -> None:
    checked = 0
    for task in TASKS:
        for name in TEST_FEATURES:
            for alignment in alignments(task, name):
                for path in (feature_dir(demo_package, task, alignment) / name).glob("*.csv"):
                    keys = WORD_LEVEL_COLUMNS if is_word_level(alignment, name) else STEP_COLUMNS
                    dims = [str(i) for i in range(FEATURE_SETS[name].dim)]
                    with path.open() as lines:
                        assert lines.readline().rstrip("\n").split(",") == [*keys, *dims], path
                    checked += 1
    assert checked == 8 * (2 * 9 + 13)  # per video: wild and trust 9 files, topic 13


def test_step_rows_match_the_label_rows(demo_package: Path) -> None:
    # (features task, alignment, the label file with the same steps)
    pairs = (("wild", "label_aligned", "wild", "arousal"),
             ("trust", "label_aligned", "trust", "trustworthiness"),
             ("topic", "egemaps_aligned", "wild", "valence"))
    for video in videos(demo_package):
        for task, alignment, label_task, target in pairs:
            steps = labels(demo_package, label_task, target, video)[list(STEP_COLUMNS)]
            assert (steps["timestamp"] % STEP_MS == 0).all()
            for name in ("egemaps", "fasttext", "vggface", "au"):
                rows = feature(demo_package, task, alignment, name, video)
                pd.testing.assert_frame_equal(rows[list(STEP_COLUMNS)], steps)
        lld = feature(demo_package, "wild", "unaligned", "lld", video)
        steps = labels(demo_package, "wild", "arousal", video)
        assert len(lld) == 25 * len(steps)
        assert set(lld["timestamp"] // STEP_MS * STEP_MS) == set(steps["timestamp"])


def test_wild_drops_the_adverts_that_trust_keeps(demo_package: Path) -> None:
    dropped = 0
    for video in videos(demo_package):
        wild = labels(demo_package, "wild", "arousal", video)
        trust = labels(demo_package, "trust", "arousal", video)
        assert set(wild["timestamp"]) <= set(trust["timestamp"])
        merged = wild.merge(trust, on=["timestamp", "segment_id"], suffixes=("_w", "_t"))
        np.testing.assert_array_equal(merged["value_w"], merged["value_t"])
        assert len(merged) == len(wild)
        dropped += len(trust) - len(wild)
        topic = labels(demo_package, "topic", "topic", video)
        assert set(topic["segment_id"]) == set(wild["segment_id"])
    assert dropped > 0


def test_label_files_and_aggregated_tables_agree(demo_package: Path) -> None:
    parts = videos(demo_package)
    for task, spec in TASKS.items():
        for partition in ALL_PARTITIONS:
            table = pd.read_csv(aggregated_file(demo_package, task, partition))
            assert list(table.columns) == [*spec.key, *spec.label_columns()]
            members = [v for v, p in parts.items() if p == partition]
            assert list(table["id"].unique()) == members
            expected = []
            for video in members:
                per_target = {t: labels(demo_package, task, t, video) for t in spec.scored}
                first = per_target[spec.scored[0]]
                rows = pd.DataFrame({"id": video, spec.key[1]: first[spec.key[1]]})
                for target, column in zip(spec.scored, spec.label_columns(), strict=True):
                    column_name = "value" if spec.continuous else "class_id"
                    rows[column] = per_target[target][column_name].to_numpy()
                expected.append(rows)
            pd.testing.assert_frame_equal(table, pd.concat(expected, ignore_index=True))


def test_label_columns_and_ranges(demo_package: Path) -> None:
    for video in videos(demo_package):
        for task in ("wild", "trust"):
            for target in TASKS[task].targets:
                frame = labels(demo_package, task, target, video)
                assert list(frame.columns) == ["timestamp", "value", "segment_id"]
                assert frame["value"].between(-1, 1).all() and frame["value"].std() > 0
        topic = labels(demo_package, "topic", "topic", video)
        assert list(topic.columns) == ["id", "segment_id", "class_id"]
        assert topic["class_id"].between(0, len(TOPIC_NAMES) - 1).all()
        for target in ("arousal", "valence"):
            frame = labels(demo_package, "topic", target, video)
            assert list(frame.columns) == ["id", "segment_id", "class_id", "mean"]
            assert frame["class_id"].isin([0, 1, 2]).all()


def test_emotion_classes_are_tertiles_of_the_segment_mean(demo_package: Path) -> None:
    for target in ("arousal", "valence"):
        frame = pd.concat(labels(demo_package, "topic", target, v) for v in videos(demo_package))
        counts = frame["class_id"].value_counts()
        assert counts.max() - counts.min() <= 1
        bounds = frame.groupby("class_id")["mean"].agg(["min", "max"])
        assert (bounds["max"].iloc[:-1].to_numpy() < bounds["min"].iloc[1:].to_numpy()).all()


def test_ceilings_cover_every_task_partition_and_target(demo_package: Path) -> None:
    ceilings = json.loads((demo_package / CEILINGS_FILE).read_text())
    assert set(ceilings) == set(TASKS)
    for task, spec in TASKS.items():
        assert set(ceilings[task]) == set(ALL_PARTITIONS)
        for partition in ALL_PARTITIONS:
            scores = ceilings[task][partition]
            assert set(scores) == set(spec.targets)
            for value in scores.values():
                assert 0.5 < value <= 1.0 if spec.continuous else 0 < value <= 100


def test_ceiling_scores_use_the_official_formulas() -> None:
    # cov = 1 (divides by N), var_x = 1 and var_y = 7/3 (divide by N-1), mean gap 1/9
    assert ccc(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])) == round(18 / 31, 4)
    # F1 75, UAR (2/3 + 1) / 2; a class only predicted counts with recall 0
    assert topic_score(np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1])) == 77.833
    assert topic_score(np.array([0, 0]), np.array([0, 1])) == 0.66 * 50 + 0.34 * 25


def test_wav_files_are_16k_mono_and_as_long_as_their_segment(demo_package: Path) -> None:
    for task in ("wild", "trust"):
        for video in videos(demo_package):
            steps = labels(demo_package, task, "arousal", video)["segment_id"].value_counts()
            for segment, count in steps.items():
                rate, samples = wavfile.read(audio_file(demo_package, task, video, segment))
                assert rate == 16_000 and samples.dtype == np.int16 and samples.ndim == 1
                assert len(samples) == count * STEP_MS * 16


def test_audio_carries_arousal(demo_package: Path) -> None:
    """A voiced segment's loudness rises with its arousal."""
    loudness, arousal = [], []
    for video in videos(demo_package):
        frame = labels(demo_package, "trust", "arousal", video)
        for segment, rows in frame.groupby("segment_id"):
            _, samples = wavfile.read(audio_file(demo_package, "trust", video, segment))
            loudness.append(np.log(np.mean(samples.astype(float) ** 2)))
            arousal.append(rows["value"].mean())
    assert np.corrcoef(loudness, arousal)[0, 1] > 0.8


def test_transcripts_are_the_fasttext_words(demo_package: Path) -> None:
    vectors: dict[str, np.ndarray] = {}
    for video in videos(demo_package):
        words = feature(demo_package, "topic", "unaligned", "fasttext", video)
        aligned = feature(demo_package, "topic", "fasttext_aligned", "fasttext", video)
        pd.testing.assert_frame_equal(words, aligned)
        for segment, rows in words.groupby("segment_id"):
            text = pd.read_csv(transcript_file(demo_package, "topic", video, segment))
            assert list(text.columns) == ["start", "end", "word"]
            np.testing.assert_array_equal(text[["start", "end"]], rows[["start", "end"]])
            for word, vector in zip(text["word"], values(rows), strict=True):
                np.testing.assert_array_equal(vectors.setdefault(word, vector), vector)
    known = set(FILLER_WORDS + POSITIVE_WORDS + NEGATIVE_WORDS + ADVERT_WORDS + CREDIBLE_WORDS
                + DUBIOUS_WORDS)
    known |= {w for words in TOPIC_WORDS.values() for w in words}
    assert set(vectors) <= known and len(vectors) > 100


def test_vocabularies_are_disjoint_english_words() -> None:
    lists = [*TOPIC_WORDS.values(), ADVERT_WORDS, POSITIVE_WORDS, NEGATIVE_WORDS, CREDIBLE_WORDS,
             DUBIOUS_WORDS, FILLER_WORDS]
    words = [w for group in lists for w in group]
    assert len(words) == len(set(words))
    assert all(w.isalpha() and w.islower() for w in words)
    assert list(TOPIC_WORDS) == list(TOPIC_NAMES)
    assert min(len(group) for group in lists) >= 20


def partial_correlation(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Correlation of x and y once the linear effect of z is taken out of both."""
    r = np.corrcoef([x, y, z])
    return (r[0, 1] - r[0, 2] * r[1, 2]) / np.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))


def test_egemaps_carries_arousal_not_valence(demo_package: Path) -> None:
    """Ridge from egemaps, leave one video out, on per-video centred steps: arousal is
    predicted; the valence fit tells nothing once arousal is accounted for."""
    xs, ys = [], []
    for video in videos(demo_package):
        x = np.nan_to_num(values(feature(demo_package, "wild", "label_aligned", "egemaps", video)))
        y = np.column_stack([labels(demo_package, "wild", t, video)["value"]
                             for t in ("arousal", "valence")])
        xs.append(x - x.mean(0))
        ys.append(y - y.mean(0))
    fits = []
    for held_out in range(len(xs)):
        x_train = np.vstack(xs[:held_out] + xs[held_out + 1:])
        y_train = np.vstack(ys[:held_out] + ys[held_out + 1:])
        std = x_train.std(0) + 1e-9
        design = x_train / std
        weights = np.linalg.solve(design.T @ design + 30 * np.eye(design.shape[1]),
                                  design.T @ y_train)
        fits.append(xs[held_out] / std @ weights)
    (arousal_fit, valence_fit), (arousal, valence) = np.vstack(fits).T, np.vstack(ys).T
    assert partial_correlation(arousal_fit, arousal, valence) > 0.45
    assert abs(partial_correlation(valence_fit, valence, arousal)) < 0.2


def test_fasttext_carries_topic(demo_package: Path) -> None:
    """Nearest centroid (leave one segment out) on segment-mean word vectors beats chance."""
    means, topics = [], []
    for video in videos(demo_package):
        words = feature(demo_package, "topic", "fasttext_aligned", "fasttext", video)
        classes = labels(demo_package, "topic", "topic", video).set_index("segment_id")
        for segment, rows in words.groupby("segment_id"):
            means.append(values(rows).mean(0))
            topics.append(classes.loc[segment, "class_id"])
    means, topics = np.array(means), np.array(topics)
    hits = []
    for i in range(len(topics)):
        others = np.arange(len(topics)) != i
        if (topics[others] == topics[i]).sum() == 0:
            continue  # its topic has no other segment to learn from
        classes = np.unique(topics[others])
        centroids = np.stack([means[others & (topics == c)].mean(0) for c in classes])
        hits.append(classes[np.argmin(((centroids - means[i]) ** 2).sum(1))] == topics[i])
    assert len(hits) >= 8 and np.mean(hits) > 0.6  # chance is about 0.1


def test_fasttext_carries_valence(demo_package: Path) -> None:
    """The train steps' valence-weighted mean word vector, smoothed over 5 s, tracks the
    held-out valence."""
    xs: dict[bool, list[np.ndarray]] = {True: [], False: []}
    ys: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for video, partition in videos(demo_package).items():
        xs[partition == "train"].append(
            values(feature(demo_package, "wild", "label_aligned", "fasttext", video)))
        ys[partition == "train"].append(labels(demo_package, "wild", "valence", video)["value"])
    y_train = np.concatenate(ys[True])
    direction = np.vstack(xs[True]).T @ (y_train - y_train.mean())
    window = np.ones(20) / 20
    projected = np.concatenate([np.convolve(x @ direction, window, "same") for x in xs[False]])
    assert np.corrcoef(projected, np.concatenate(ys[False]))[0, 1] > 0.4


def test_vision_has_no_face_rows(demo_package: Path) -> None:
    zero_rows = 0
    for video in videos(demo_package):
        for name in ("vggface", "au"):
            aligned = values(feature(demo_package, "trust", "label_aligned", name, video))
            unaligned = feature(demo_package, "trust", "unaligned", name, video)
            absent = (aligned == 0).all(axis=1)
            assert len(unaligned) == (~absent).sum()
            zero_rows += absent.sum()
    assert zero_rows > 0


def test_a_few_nan_cells_in_audio_and_vision_only(demo_package: Path) -> None:
    nan_cells = {name: 0 for name in TEST_FEATURES}
    for video in videos(demo_package):
        for name in TEST_FEATURES:
            alignment = "unaligned" if name in UNALIGNED_ONLY else "label_aligned"
            nan_cells[name] += int(np.isnan(values(feature(demo_package, "trust", alignment,
                                                           name, video))).sum())
        for target in TASKS["trust"].targets:
            assert not labels(demo_package, "trust", target, video).isna().any().any()
    assert nan_cells["fasttext"] == 0
    assert 0 < sum(nan_cells.values()) < 100


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    first = synthesize(tmp_path / "a", **TINY)
    again = synthesize(tmp_path / "b", **TINY)
    other = synthesize(tmp_path / "c", **{**TINY, "seed": 4})
    assert checksum(first) == checksum(again) != checksum(other)


def test_feature_choice_leaves_other_files_unchanged(tmp_path: Path) -> None:
    full = synthesize(tmp_path / "a", **TINY)
    egemaps = synthesize(tmp_path / "b", **{**TINY, "features": ["egemaps"]})
    assert not (egemaps / "c1_muse_wild" / "feature_segments" / "label_aligned" / "au").exists()
    for path in egemaps.rglob("*.csv"):
        assert path.read_bytes() == (full / path.relative_to(egemaps)).read_bytes(), path


def test_unknown_features_and_too_few_videos_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope, vgface"):
        synthesize(tmp_path / "a", features=["egemaps", "nope", "vgface"])
    with pytest.raises(SynthesisError, match="at least 3 videos"):
        synthesize(tmp_path / "a", videos=2)
    assert not (tmp_path / "a").exists()


def test_a_non_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(SynthesisError, match="not empty"):
        synthesize(tmp_path / "out", **TINY)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    (tmp_path / "empty").mkdir()
    assert synthesize(tmp_path / "empty", **TINY) == tmp_path / "empty"


def test_an_interrupted_synth_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    written = []

    def interrupt_on_the_second_video(*args, **kwargs) -> None:
        written.append(args[1])
        if len(written) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(synth_build, "write_video", interrupt_on_the_second_video)
    with pytest.raises(KeyboardInterrupt):
        synthesize(tmp_path / "out", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_a_package(tmp_path: Path, capsys) -> None:
    code = muse_main(["synth", "--out", str(tmp_path / "p"), "--videos", "3", "--minutes", "0.2",
                      "--features", "pose,gocar"])
    assert code == 0 and str(tmp_path / "p") in capsys.readouterr().out
    video = next(iter(videos(tmp_path / "p")))
    pose = feature(tmp_path / "p", "wild", "label_aligned", "pose", video)
    assert pose.shape[1] == 2 + FEATURE_SETS["pose"].dim


def test_full_scale_plan_has_the_real_size() -> None:
    scale = SCALES["full"]
    plans = plan_package(scale.videos, scale.minutes, seed=0)
    assert len(plans) == 291 and set(scale.features) == set(FEATURE_SETS)
    assert abs(sum(p.n_steps for p in plans) - 518_400) < 0.01 * 518_400
    counts = pd.Series([p.partition for p in plans]).value_counts()
    assert counts["train"] > counts["devel"] > 0 and counts["test"] > 0
    topic_segments = sum(len(p.segments_for("topic")) for p in plans)
    assert 6_000 < topic_segments < 7_500  # MuSe-Topic: about 6.8 k


def _feature_rows(package: Path, name: str) -> np.ndarray:
    """Every label-aligned MuSe-Wild row of a feature set (all videos), without key columns."""
    folder = package / "c1_muse_wild" / "feature_segments" / "label_aligned" / name
    frames = [pd.read_csv(path) for path in sorted(folder.glob("*.csv"))]
    return pd.concat(frames).drop(columns=["timestamp", "segment_id"]).to_numpy()


def test_descriptors_have_the_magnitudes_of_the_real_sets(demo_package: Path) -> None:
    """eGeMAPS in its real units; OpenFace's AUs; ReLU-sparse VGGface embeddings."""
    egemaps = _feature_rows(demo_package, "egemaps")
    typical = np.nanmedian(egemaps, axis=0)
    assert 25 < typical[0] < 35            # F0 mean, semitones from 27.5 Hz
    assert 0.005 < typical[30] < 0.05      # jitter
    assert 0.3 < typical[10] < 3           # loudness
    assert 400 < typical[40] < 700 and 800 < typical[42] < 1400   # F1 frequency, bandwidth
    assert 2300 < typical[52] < 2900       # F3 frequency
    assert np.nanmax(np.abs(egemaps)) / np.nanmin(np.abs(typical[typical != 0])) > 1e4
    au = _feature_rows(demo_package, "au")
    face = np.any(au != 0, axis=1)         # rows without a face are all zero
    assert face.any()
    assert np.nanmin(au[face, :17]) >= 0 and np.nanmax(au[face, :17]) <= 5    # intensities
    assert np.nanmin(au[face, 17:]) >= 0 and np.nanmax(au[face, 17:]) <= 1    # presences
    vggface = _feature_rows(demo_package, "vggface")[face]
    assert np.nanmin(vggface) == 0 and 0.3 < np.nanmean(vggface == 0) < 0.8

"""`muse extract` on real speech (an espeak-ng clip, as flac and muxed into mp4/mkv): the layout
`muse prepare` reads, eGeMAPS equal to openSMILE's own, the VAD's segments, fastText rows,
labels, and the named errors."""

from __future__ import annotations

from pathlib import Path

import av
import h5py
import numpy as np
import opensmile
import pandas as pd
import pytest
from extract_media import (
    SPEECH,
    SPEECH_MS,
    WORDS,
    mux,
    speech_samples,
    train_fasttext,
    write_transcript,
)
from scipy.io import wavfile

from muse.cli import main
from muse.package.extract import EXTRACTABLE, NEEDS_WEIGHTS, ExtractError, extract_package
from muse.package.extract.acoustic import egemaps_steps
from muse.package.extract.decode import decode_audio
from muse.package.extract.pipeline import media_files
from muse.package.extract.text import FastTextModel
from muse.package.extract.vad import speech_segments
from muse.package.layout import FEATURE_SETS, STEP_MS, feature_dir
from muse.store.prepare import prepare
from muse.tasks import TASKS


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("media")
    transcripts = folder / "transcripts"
    transcripts.mkdir()
    write_transcript(transcripts / "review.csv")
    return {"mp4": mux(folder / "review.mp4"), "transcripts": transcripts,
            "fasttext": train_fasttext(folder)}


@pytest.fixture(scope="module")
def package(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mp4 extracted with every extractable set."""
    return extract_package([media["mp4"]], tmp_path_factory.mktemp("extracted") / "package",
                           transcripts=media["transcripts"], fasttext_model=media["fasttext"],
                           features=["egemaps", "lld", "fasttext"])


@pytest.fixture(scope="module")
def stores(package: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return prepare(package, tmp_path_factory.mktemp("stores"))


def _steps(package: Path, task: str = "wild", feature: str = "egemaps") -> pd.DataFrame:
    alignment = "label_aligned" if task != "topic" else "egemaps_aligned"
    return pd.read_csv(feature_dir(package, task, alignment) / feature / "1.csv")


@pytest.mark.slow
def test_prepare_reads_the_extracted_package(package: Path, stores: dict[str, Path]) -> None:
    steps = _steps(package)
    partition = pd.read_csv(package / "metadata" / "partition.csv")
    assert partition.to_dict("list") == {"Id": [1], "Proposal": ["test"]}
    with h5py.File(stores["wild"]) as wild:
        np.testing.assert_array_equal(wild["label_aligned/timestamp"][:], steps["timestamp"])
        assert wild["label_aligned/features/egemaps"].shape == (len(steps), 88)
        assert wild["label_aligned/features/fasttext"].shape == (len(steps), 300)
        assert wild["label_aligned/features/lld"].shape == (len(steps), 130)
        assert np.isnan(wild["label_aligned/labels/arousal"][:]).all()  # masked
        assert wild["unaligned/lld/features/lld"].shape[0] > 20 * len(steps)  # 10 ms frames
        # the segment wav is the decoded audio from the segment's first step on
        assert wild["audio/samples"].shape[0] == (steps["timestamp"].max() + STEP_MS) * 8
    with h5py.File(stores["topic"]) as topic:
        assert topic["segments/text"][0].decode() == " ".join(w for _, _, w in WORDS)
        assert topic["fasttext_aligned/features/egemaps"].shape == (len(WORDS), 88)
    with h5py.File(stores["trust"]) as trust:
        assert trust["label_aligned/features/egemaps"].shape == (len(steps), 88)
    rate, wav = wavfile.read(package / "c1_muse_wild" / "audio_segments" / "1" / "1_1.wav")
    assert rate == 16000 and wav.dtype == np.int16
    assert len(wav) == (steps["timestamp"].max() + STEP_MS - steps["timestamp"].min()) * 16


@pytest.mark.slow
def test_egemaps_equals_opensmile_on_the_same_audio_and_window(tmp_path: Path) -> None:
    package = extract_package([SPEECH], tmp_path / "package", features=["egemaps"], workers=2)
    steps = _steps(package)
    one_process = egemaps_steps(decode_audio(SPEECH), steps["timestamp"].to_numpy())
    np.testing.assert_allclose(steps[[str(i) for i in range(88)]].to_numpy(), one_process,
                               rtol=1e-6)
    samples, rate = speech_samples()
    # the paper's preparation, done independently: peak at -3 dBFS, 16 bit
    scaled = samples / np.abs(samples.astype(np.float64)).max() * 10 ** (-3 / 20)
    audio = np.round(scaled * 32767).astype(np.int16).astype(np.float32) / 32768
    smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    for row in (0, len(steps) // 2, len(steps) - 1):
        centre = steps["timestamp"][row] + 125
        start, end = max(0, centre - 2500), min(len(audio) * 1000 // rate, centre + 2500)
        expected = smile.process_signal(audio[start * 16:end * 16], rate).to_numpy()[0]
        found = steps.iloc[row][[str(i) for i in range(88)]].to_numpy(np.float64)
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(np.diff(steps[[str(i) for i in range(88)]].to_numpy(), axis=0)).sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("source", ["flac", "mp4"])
def test_vad_finds_the_speech_and_not_the_silence(source: str, tmp_path: Path) -> None:
    path = SPEECH if source == "flac" else mux(tmp_path / f"clip.{source}", source)
    package = extract_package([path], tmp_path / "package", features=["egemaps"])
    steps = _steps(package)
    assert set(steps["segment_id"]) == {1}  # one stretch of talk
    first, last = steps["timestamp"].min(), steps["timestamp"].max() + STEP_MS
    assert SPEECH_MS[0] - STEP_MS <= first <= SPEECH_MS[0] + STEP_MS  # not the second before
    assert SPEECH_MS[1] - STEP_MS <= last <= SPEECH_MS[1] + STEP_MS  # nor the second after
    assert np.all(np.diff(steps["timestamp"]) == STEP_MS)


@pytest.mark.parametrize(("suffix", "container"), [
    ("wav", "wav"), ("mp3", "mp3"), ("mkv", "matroska"), ("webm", "webm")])
def test_every_container_decodes_to_the_same_speech(suffix: str, container: str,
                                                    tmp_path: Path) -> None:
    samples = decode_audio(mux(tmp_path / f"clip.{suffix}", container))
    reference = decode_audio(SPEECH)
    assert abs(len(samples) - len(reference)) <= 0.05 * 16000  # encoder padding at most
    assert np.abs(samples).max() == round(10 ** (-3 / 20) * 32767)  # peak at -3 dBFS
    segments = speech_segments(samples)
    assert len(segments) == 1
    assert abs(segments[0].start_ms - SPEECH_MS[0]) <= STEP_MS
    assert abs(segments[0].end_ms - SPEECH_MS[1]) <= STEP_MS


@pytest.mark.slow
def test_fasttext_rows_are_the_words_vectors(package: Path, media: dict[str, Path]) -> None:
    model = FastTextModel(media["fasttext"])
    vectors = model.vectors([w for _, _, w in WORDS])
    assert np.abs(vectors).sum(axis=1).min() > 0
    columns = [str(i) for i in range(300)]
    for task, alignment in (("wild", "unaligned"), ("topic", "fasttext_aligned")):
        words = pd.read_csv(feature_dir(package, task, alignment) / "fasttext" / "1.csv")
        assert list(words.columns[:3]) == ["start", "end", "segment_id"]
        assert words[["start", "end"]].to_numpy().tolist() == [[s, e] for s, e, _ in WORDS]
        np.testing.assert_allclose(words[columns].to_numpy(), vectors, rtol=1e-5, atol=1e-6)
    steps = _steps(package, feature="fasttext")
    values = steps[columns].to_numpy()
    for row, step in enumerate(steps["timestamp"]):
        overlap = [min(e, step + STEP_MS) - max(s, step) for s, e, _ in WORDS]
        if max(overlap) > 0:  # repeated over the word's steps: the longest-overlapping word
            np.testing.assert_allclose(values[row], vectors[int(np.argmax(overlap))],
                                       rtol=1e-5, atol=1e-6)
        else:
            assert not values[row].any()  # zeros where nobody speaks
    assert not values[(steps["timestamp"] == 2500).to_numpy()].any()  # the pause after "well,"


def test_a_set_that_needs_weights_is_a_named_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(ExtractError, match="'vggface' cannot be extracted here: it needs VGGFace"):
        extract_package([SPEECH], tmp_path / "package", features=["egemaps", "vggface"])
    assert main(["extract", "--media", str(SPEECH), "--out", str(tmp_path / "p"),
                 "--features", "egemaps,openpose"]) == 1
    assert "'openpose' cannot be extracted here" in capsys.readouterr().err
    assert not (tmp_path / "package").exists() and not (tmp_path / "p").exists()


@pytest.mark.slow
def test_every_feature_set_is_extracted_or_refused_with_its_reason(
        tmp_path: Path, media: dict[str, Path]) -> None:
    assert set(EXTRACTABLE) | set(NEEDS_WEIGHTS) == set(FEATURE_SETS)
    assert not set(EXTRACTABLE) & set(NEEDS_WEIGHTS)
    with pytest.raises(ExtractError, match="speech.flac: fasttext needs a transcript"):
        extract_package([SPEECH], tmp_path / "p", fasttext_model=media["fasttext"],
                        features=["fasttext"])
    early = tmp_path / "early.srt"  # words in the silence before the speech
    early.write_text("1\n00:00:00,100 --> 00:00:00,600\nhello there\n")
    with pytest.raises(ExtractError, match="speech.flac: none of the transcript's 2 word"):
        extract_package([SPEECH], tmp_path / "p", transcripts={"speech": early},
                        fasttext_model=media["fasttext"], features=["fasttext"])
    with pytest.raises(ExtractError, match="'fasttext' needs a fastText binary model"):
        extract_package([SPEECH], tmp_path / "p", features=["fasttext"])
    with pytest.raises(ExtractError, match="choose egemaps or fasttext too"):
        extract_package([SPEECH], tmp_path / "p", features=["lld"])
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_bad_media_is_a_named_error_and_leaves_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "broken.mp4"
    fake.write_bytes(b"\x00\x01 not a video" * 100)
    with pytest.raises(ExtractError, match="broken.mp4: not a readable audio or video file"):
        extract_package([SPEECH, fake], tmp_path / "package", features=["egemaps"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]  # no half package
    assert media_files([tmp_path, SPEECH]) == [fake, SPEECH]  # a folder: its media files
    (tmp_path / "notes.txt").write_text("not media")
    assert media_files([tmp_path]) == [fake]
    picture_only = tmp_path / "picture.mp4"
    with av.open(str(picture_only), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(ExtractError, match="picture.mp4: no audio track"):
        decode_audio(picture_only)
    silent = tmp_path / "silent.wav"
    wavfile.write(silent, 16000, np.zeros(16000 * 3, np.int16))
    with pytest.raises(ExtractError, match="silent.wav: the audio track is silent"):
        decode_audio(silent)


@pytest.mark.slow
def test_labels_make_a_labelled_package(tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    times = np.arange(0, 5000, 100)
    pd.DataFrame({"file": "speech.flac", "timestamp": times, "arousal": times / 5000,
                  "valence": -times / 5000, "partition": "train"}).to_csv(table, index=False)
    package = tmp_path / "package"
    assert main(["extract", "--media", str(SPEECH), "--out", str(package), "--features",
                 "egemaps", "--labels", str(table)]) == 0
    assert pd.read_csv(package / "metadata" / "partition.csv")["Proposal"].tolist() == ["train"]
    stores = prepare(package, tmp_path / "stores", tasks=["wild", "trust"])
    with h5py.File(stores["wild"]) as wild:
        step = wild["label_aligned/timestamp"][:]
        np.testing.assert_allclose(wild["label_aligned/labels/arousal"][:], step / 5000,
                                   atol=1e-4)
        np.testing.assert_allclose(wild["label_aligned/labels/valence"][:], -step / 5000,
                                   atol=1e-4)
    with h5py.File(stores["trust"]) as trust:  # no trustworthiness column: masked
        assert np.isnan(trust["label_aligned/labels/trustworthiness"][:]).all()
    aggregated = pd.read_csv(package / TASKS["wild"].folder / "label_segments" / "aggregated"
                             / "train.csv")
    assert list(aggregated.columns) == ["id", "timestamp", "label_arousal", "label_valence"]
    assert len(aggregated) == len(step)
    unknown = tmp_path / "unknown.csv"
    pd.DataFrame({"file": ["other.mp4"], "timestamp": [0], "arousal": [0.1]}).to_csv(unknown)
    with pytest.raises(ExtractError, match=r"labels for file\(s\) not among the media"):
        extract_package([SPEECH], tmp_path / "again", features=["egemaps"], labels=unknown)


def test_a_long_pause_splits_the_speech_into_segments() -> None:
    clip = decode_audio(SPEECH)  # speech, then 1 s of silence + 1 s before the next speech
    segments = speech_segments(np.concatenate([clip, clip]))
    assert [s.segment_id for s in segments] == [1, 2]
    clip_ms = len(clip) // 16
    for segment, offset in zip(segments, (0, clip_ms), strict=True):
        assert abs(segment.start_ms - (offset + SPEECH_MS[0])) <= STEP_MS
        assert abs(segment.end_ms - (offset + SPEECH_MS[1])) <= STEP_MS

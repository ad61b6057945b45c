"""Media for the extraction tests, made from the committed espeak-ng clip (tests/data).

`speech.flac`: 16 kHz mono, 1 s of faint noise, 3.2 s of espeak-ng speech ("The new car handles
well, and the seats are comfortable."), 1 s of faint noise. `mux` puts it into a container with
PyAV (mp4, mkv, webm with a small moving picture; mp3, wav), as a car review would come.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import fasttext
import numpy as np
import pandas as pd
import soundfile

SPEECH = Path(__file__).parent / "data" / "speech.flac"
SPEECH_MS = (1000, 4214)  # where the speech is in the clip
# Word timings read off the clip's waveform (ms); a pause after "well,".
WORDS = [(1000, 1150, "The"), (1150, 1350, "new"), (1350, 1700, "car"),
         (1700, 2100, "handles"), (2100, 2450, "well,"), (2750, 2950, "and"),
         (2950, 3050, "the"), (3050, 3400, "seats"), (3400, 3550, "are"),
         (3550, 4200, "comfortable.")]
SENTENCES = [
    "the new car handles well and the seats are comfortable",
    "the seats are soft and the car is comfortable on long trips",
    "this car handles well in the city and the engine is quiet",
    "the price is fair and the new seats are comfortable",
] * 20


def speech_samples() -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(SPEECH, dtype="int16")
    return samples, rate


# container format -> (video codec or None, audio codec), as such files usually come
CONTAINERS = {
    "mp4": ("mpeg4", "aac"),
    "matroska": ("mpeg4", "aac"),
    "webm": ("libvpx", "libopus"),
    "mp3": (None, "libmp3lame"),
    "wav": (None, "pcm_s16le"),
}


def mux(out: Path, container_format: str = "mp4") -> Path:
    """The clip as the audio track of `out` in one of `CONTAINERS`, with a small moving picture
    where the container is a video one."""
    samples, rate = speech_samples()
    video_codec, audio_codec = CONTAINERS[container_format]
    with av.open(str(out), "w", format=container_format) as container:
        # every stream before the first packet; the picture first, as in most videos
        video = container.add_stream(video_codec, rate=4) if video_codec else None
        audio = container.add_stream(audio_codec, rate=rate)
        audio.layout = "mono"
        if video is not None:
            video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
            for i in range(int(len(samples) / rate * 4)):
                picture = np.full((32, 32, 3), (i * 20) % 255, np.uint8)
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, 4)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
        chunk = 960  # one 20 ms Opus frame at 48 kHz is 960 samples; any size suits the others
        for start in range(0, len(samples), chunk):
            part = samples[start:start + chunk].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(part, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return out


def write_transcript(out: Path) -> Path:
    pd.DataFrame(WORDS, columns=["start", "end", "word"]).to_csv(out, index=False)
    return out


def train_fasttext(folder: Path) -> Path:
    """A tiny 300-d skip-gram model trained on a few sentences about cars."""
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n")
    model = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=300, minCount=1,
                                        epoch=3, thread=1, minn=2, maxn=3, bucket=2000,
                                        verbose=0)
    path = folder / "tiny.bin"
    model.save_model(str(path))
    return path

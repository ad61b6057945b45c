"""The audio track of a media file as the challenge prepared it: mono, 16 kHz, 16 bit, -3 dB.

PyAV carries FFmpeg's libraries in its wheel, so wav, flac, mp3, mp4, mkv and webm decode
without an ffmpeg program. The paper (section 4.1) normalised the audio to -3 dB: the peak
sample is scaled to -3 dBFS (10 ** (-3 / 20) of full scale).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from muse.package.extract.errors import ExtractError

SAMPLE_RATE = 16_000
PEAK_DBFS = -3.0
MEDIA_SUFFIXES = (".wav", ".flac", ".mp3", ".mp4", ".m4a", ".mkv", ".webm")


def decode_audio(path: Path) -> np.ndarray:
    """The first audio stream of `path` as int16 samples, mono at 16 kHz, peak at -3 dBFS.

    A file PyAV cannot open, one without an audio stream or one whose audio is all silence is
    an `ExtractError` naming the file."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise ExtractError(f"{path}: no audio track")
            samples = _decode_stream(container, container.streams.audio[0])
    except av.FFmpegError as err:
        raise ExtractError(f"{path}: not a readable audio or video file ({err})") from None
    if not samples.size:
        raise ExtractError(f"{path}: the audio track holds no samples")
    return normalise_peak(path, samples)


def _decode_stream(container: av.container.InputContainer, stream: av.AudioStream) -> np.ndarray:
    # swresample mixes the channels down and resamples; float keeps the headroom the
    # normalisation below needs before the samples become 16 bit.
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    for frame in container.decode(stream):
        chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks) if chunks else np.empty(0, np.float32)


def normalise_peak(path: Path, samples: np.ndarray) -> np.ndarray:
    """Scale float samples so the peak sits at -3 dBFS and round them to int16."""
    peak = float(np.max(np.abs(samples)))
    if peak == 0.0:
        raise ExtractError(f"{path}: the audio track is silent (every sample is zero)")
    scaled = samples.astype(np.float64) * (10 ** (PEAK_DBFS / 20) / peak)
    return np.clip(np.round(scaled * 32767.0), -32768, 32767).astype(np.int16)

"""`muse extract`: new media (a car review, any speech recording) -> a package in the official
layout, with the challenge's audio and text features where this machine can compute them
(eGeMAPS, LLD, fastText), so `muse prepare` and everything after it read it unchanged.

One file per job: decode (PyAV), vad (WebRTC VAD onto the 250 ms grid), acoustic (openSMILE),
transcripts (CSV / SRT / WebVTT), text (fastText), labels (a researcher's own curves), video
(one media file), package (the layout writer) and pipeline (`extract_package`).
"""

from muse.package.extract.errors import ExtractError
from muse.package.extract.pipeline import EXTRACTABLE, NEEDS_WEIGHTS, extract_package

__all__ = ["EXTRACTABLE", "NEEDS_WEIGHTS", "ExtractError", "extract_package"]

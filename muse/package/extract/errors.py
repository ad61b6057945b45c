"""The error `muse extract` raises for media, transcripts, labels or options it cannot use."""

from __future__ import annotations

from muse.errors import MuseError


class ExtractError(MuseError):
    """A media file, transcript, label table or requested feature set cannot be extracted."""

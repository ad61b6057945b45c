"""The error `muse predict` raises for a run, media or package it cannot predict with."""

from __future__ import annotations

from muse.errors import MuseError


class PredictError(MuseError):
    """A run cannot be applied: its inputs cannot be extracted here, or its files are missing."""

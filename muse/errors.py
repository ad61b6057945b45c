"""Errors muse raises for bad input: each names the file and what is wrong with it."""

from __future__ import annotations


class MuseError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class PackageError(MuseError):
    """A file of the challenge package cannot be used as it is."""


class ScoringError(MuseError):
    """Predictions cannot be scored against the labels (columns or keys do not match)."""


class StoreError(MuseError):
    """An HDF5 store is missing, incomplete or of another schema version."""


class FusionError(MuseError):
    """Runs cannot be fused: they differ in task, store or keys, or lack what a method needs."""


class CheckpointError(MuseError):
    """A run's best checkpoint is neither on this machine nor among the run's artifacts."""

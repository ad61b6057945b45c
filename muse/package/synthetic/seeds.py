"""Deterministic random streams: every random draw of the generator comes from a named stream.

Streams are keyed by names hashed with BLAKE2 (stable across runs and machines, unlike Python's
salted `hash`), so one video's curves do not depend on which other videos or feature sets are
generated, and a feature file stays byte-identical when `--features` changes.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_hash(text: str) -> int:
    """A 64-bit integer for `text` that never changes between runs, processes or machines."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def stream(*keys: int | str) -> np.random.Generator:
    """The random stream named by `keys` (integers such as the seed or a video id, and names)."""
    return np.random.default_rng([k if isinstance(k, int) else stable_hash(k) for k in keys])

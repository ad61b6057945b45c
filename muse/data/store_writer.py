"""Writing one HDF5 store (docs/hdf5-store.md) video by video, atomically.

The store is written to a temporary file next to its destination and renamed into place only
after the `complete` attribute is set, so an interrupted prepare never leaves a file that looks
whole. Arrays grow per video (resizable datasets), so memory holds one video at a time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

SCHEMA_VERSION = 1
_CHUNK_BYTES = 1 << 20  # ~1 MiB chunks: a 50-step window of any feature set is a few chunks
# Appends end mid-chunk; a chunk cache that holds those partial chunks avoids rewriting them
# (about 3x faster writes than h5py's 1 MiB default).
_CHUNK_CACHE_BYTES = 16 << 20


class RowTable:
    """A group whose datasets grow together, with offsets marking where each video ends."""

    def __init__(self, group: h5py.Group, offsets_name: str = "video_offsets") -> None:
        self.group = group
        self.rows = 0
        self.offsets_name = offsets_name
        self.offsets = [0]

    def append(self, rows: int, arrays: dict[str, np.ndarray]) -> None:
        """Append `rows` rows to each named dataset (created on first use, name may hold '/')."""
        for name, values in arrays.items():
            if len(values) != rows:
                raise ValueError(f"{name}: {len(values)} rows, expected {rows}")
            dataset = self.group.get(name)
            if dataset is None:
                dataset = _create(self.group, name, values)
            dataset.resize(self.rows + rows, axis=0)
            dataset[self.rows:] = values
        self.rows += rows

    def close_video(self) -> None:
        self.offsets.append(self.rows)

    def finish(self) -> None:
        self.group.create_dataset(self.offsets_name, data=np.asarray(self.offsets, np.int64))


def _create(group: h5py.Group, name: str, values: np.ndarray) -> h5py.Dataset:
    shape = (0, *values.shape[1:])
    if values.dtype.kind in "OU":
        return group.create_dataset(name, shape=shape, maxshape=(None,),
                                    dtype=h5py.string_dtype(), chunks=(1024,))
    row_bytes = max(1, int(np.prod(values.shape[1:], dtype=np.int64)) * values.dtype.itemsize)
    chunk_rows = max(1, min(_CHUNK_BYTES // row_bytes, 1 << 16))
    dataset = group.create_dataset(name, shape=shape, maxshape=(None, *values.shape[1:]),
                                   dtype=values.dtype, chunks=(chunk_rows, *values.shape[1:]))
    if values.ndim == 2:
        dataset.attrs["dim"] = values.shape[1]
    return dataset


class StoreWriter:
    """Context manager around the temporary HDF5 file of one store."""

    def __init__(self, path: Path, task: str, targets: list[str], fingerprint: str,
                 audio_rate: int) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.attrs = {"schema_version": SCHEMA_VERSION, "task": task,
                      "targets": json.dumps(targets), "fingerprint": fingerprint,
                      "audio_rate": audio_rate}
        self.file: h5py.File | None = None
        self.tables: dict[str, RowTable] = {}

    def __enter__(self) -> StoreWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.tmp, "w", rdcc_nbytes=_CHUNK_CACHE_BYTES, rdcc_nslots=10007)
        self.file.attrs.update(self.attrs)
        return self

    def table(self, name: str, offsets_name: str = "video_offsets") -> RowTable:
        if name not in self.tables:
            assert self.file is not None
            self.tables[name] = RowTable(self.file.require_group(name), offsets_name)
        return self.tables[name]

    def write(self, name: str, values: np.ndarray) -> None:
        assert self.file is not None
        if values.dtype.kind in "OU":
            self.file.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
        else:
            self.file.create_dataset(name, data=values)

    def finish(self, **attrs: object) -> None:
        """Close every table, write the final attributes and mark the store complete."""
        assert self.file is not None
        for table in self.tables.values():
            table.finish()
        for key, value in attrs.items():
            self.file.attrs[key] = json.dumps(value)
        self.file.attrs["complete"] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.file is not None
        complete = bool(self.file.attrs.get("complete", False))
        self.file.close()
        if exc_type is None and complete:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)

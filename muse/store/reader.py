"""Read-only access to one HDF5 store written by `muse prepare` (schema: docs/hdf5-store.md).

The h5py.File is opened on first use in each process and never pickled: a DataLoader worker
receives (or, after a fork, inherits) a store without a usable handle and opens its own, because
an HDF5 handle survives neither pickling nor a fork. Small arrays (ids, offsets, timestamps,
labels, texts) are read whole with `read`. Feature and audio arrays, the big ones, are kept in
memory while they fit the memory budget and are read from the file slice by slice otherwise;
`rows` and `audio` hand back objects with the same interface in both cases.

Streamed slices go through `chunked`: a read-only memory map of the file (one per process, made
on first use and never pickled, like the handle), from which an uncompressed dataset's rows are
copied without h5py's per-call overhead. Other datasets are read through h5py. Both give the
same bytes (muse/store/chunked.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from muse.errors import StoreError
from muse.package.layout import STEP_MS
from muse.store.chunked import ChunkedArray, map_file
from muse.store.writer import SCHEMA_VERSION

INT16_SCALE = 32768.0  # int16 -> float32 in [-1, 1)
_SCALE = np.float32(1.0 / INT16_SCALE)  # a power of two: the products are exact
READ_BLOCK_BYTES = 64 * 2**20  # features held in memory are read this much at a time


def _text(value: object) -> str:
    """HDF5 attributes come back as str or bytes depending on how they were written."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _attribute(path: str | Path, name: str) -> str | None:
    """A text attribute of a store's root (None: unreadable, or none written)."""
    try:
        with h5py.File(path, "r") as store:
            value = store.attrs.get(name)
    except OSError:
        return None
    return None if value is None else _text(value)


def fingerprint(path: str | Path) -> str | None:
    """The fingerprint `muse prepare` wrote into a store: what identifies the package files and
    options it was made from (None: unreadable, or none written)."""
    return _attribute(path, "fingerprint")


def package_source(path: str | Path) -> str | None:
    """The package folder `muse prepare` made a store from (None: a store older than that
    record, or unreadable)."""
    return _attribute(path, "package")


class Store:
    """One store file: its videos, row tables, features and audio."""

    def __init__(self, path: str | Path, memory_budget_mb: float = 2048) -> None:
        self.path = Path(path)
        self._budget_left = int(memory_budget_mb * 2**20)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._datasets: dict[str, h5py.Dataset] = {}
        self._map: np.ndarray | None = None  # this process's map of the file, see `chunked`
        self._chunked: dict[str, ChunkedArray] = {}
        attrs = self.file.attrs
        self.task = _text(attrs["task"])
        self.targets: tuple[str, ...] = tuple(json.loads(_text(attrs["targets"])))
        self.audio_rate = int(attrs.get("audio_rate", 0))
        self.video_ids = self.read("videos/id").astype(np.int64)
        self.partitions = self.read("videos/partition")
        # Metadata is read; release the handle so that forked workers inherit none.
        self.close()

    # -- the lazily opened file ------------------------------------------------------------

    @property
    def file(self) -> h5py.File:
        """The open file of this process, opened (and validated) on first use."""
        if self._file is None or self._pid != os.getpid():
            # A handle inherited through fork belongs to the parent: drop it before reopening
            # so HDF5 does not hand back the parent's shared file state. The parent's map goes
            # with it (it would still read correctly, but it was built on the parent's handle).
            self._forget()
            self._file, self._pid = self._open(), os.getpid()
        return self._file

    def _open(self) -> h5py.File:
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no such store; run `muse prepare` first")
        try:
            file = h5py.File(self.path, "r")
        except OSError as err:
            raise StoreError(f"{self.path}: not a readable HDF5 store ({err})") from err
        version = file.attrs.get("schema_version")
        if version is None or int(version) != SCHEMA_VERSION:
            file.close()
            raise StoreError(
                f"{self.path}: store schema version {version}, this muse reads version "
                f"{SCHEMA_VERSION}; run `muse prepare` again"
            )
        if not bool(file.attrs.get("complete", False)):
            file.close()
            raise StoreError(
                f"{self.path}: incomplete store (no `complete` mark, prepare was interrupted); "
                "run `muse prepare` again"
            )
        return file

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._forget()

    def _forget(self) -> None:
        """Drop the handle and everything built on it; the next use opens them again."""
        self._file, self._pid, self._datasets = None, None, {}
        self._map, self._chunked = None, {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_file=None, _pid=None, _datasets={}, _map=None, _chunked={})
        return state

    def dataset(self, name: str) -> h5py.Dataset:
        """The named dataset of this process's file; lookups are cached (they cost microseconds)."""
        file = self.file
        found = self._datasets.get(name)
        if found is None:
            if name not in file:
                raise StoreError(f"{self.path}: the store has no `{name}`")
            found = self._datasets[name] = file[name]
        return found

    def chunked(self, name: str) -> ChunkedArray:
        """The named dataset for slicing along its rows, read through this process's memory
        map of the file where the dataset allows it (through h5py otherwise); cached."""
        file = self.file
        found = self._chunked.get(name)
        if found is None:
            if self._map is None:
                self._map = map_file(self.path, file)  # None again: no map, h5py reads
            found = self._chunked[name] = ChunkedArray(self.dataset(name), self._map)
        return found

    # -- small arrays ------------------------------------------------------------------------

    def read(self, name: str) -> np.ndarray:
        """A whole dataset; strings come back as an object array of str."""
        ds = self.dataset(name)
        if h5py.check_string_dtype(ds.dtype) is not None:
            return np.array(ds.asstr()[()], dtype=object)
        return ds[()]

    def videos(self, partition: str) -> np.ndarray:
        """Indices (into `video_ids`) of the videos of one partition."""
        return np.flatnonzero(self.partitions == partition)

    def segment_videos(self) -> np.ndarray:
        """Topic stores: the index (into `video_ids`) of each stored segment's video."""
        offsets = self.read("segments/video_offsets")
        return np.repeat(np.arange(len(self.video_ids)), np.diff(offsets))

    # -- features -----------------------------------------------------------------------------

    def feature_names(self, table: str) -> list[str]:
        group = f"{table}/features"
        return list(self.file[group].keys()) if group in self.file else []

    def feature_dims(self, table: str, names: Sequence[str]) -> list[int]:
        """The dimension of each named feature of a table; unknown names raise StoreError."""
        available = self.feature_names(table)
        unknown = [name for name in names if name not in available]
        if unknown:
            raise StoreError(
                f"{self.path}: no feature {', '.join(unknown)} in `{table}`; "
                f"the store has: {', '.join(available) or 'none'}"
            )
        return [self.dataset(f"{table}/features/{name}").shape[1] for name in names]

    def rows(self, table: str, names: Sequence[str]) -> MemoryRows | StreamedRows:
        """The named features of a table, concatenated in the given order (early fusion)."""
        dims = self.feature_dims(table, names)
        paths = [f"{table}/features/{name}" for name in names]
        if not paths:  # no features besides the raw audio: rows of width 0, no memory
            return MemoryRows(np.empty((self.dataset(f"{table}/timestamp").shape[0], 0),
                                       dtype=np.float32))
        n_rows = self.dataset(paths[0]).shape[0]
        if not self._reserve(n_rows * sum(dims) * np.dtype(np.float32).itemsize):
            return StreamedRows(self, paths)
        fused = np.empty((n_rows, sum(dims)), dtype=np.float32)
        column = 0
        for path, dim in zip(paths, dims, strict=True):
            _read_into(self.dataset(path), fused[:, column:column + dim])
            column += dim
        return MemoryRows(fused)

    def audio(self) -> Audio:
        """Raw audio of every video, per label step; StoreError if the store has none."""
        if self.audio_rate <= 0 or "audio/samples" not in self.file:
            raise StoreError(
                f"{self.path}: the store was prepared without audio; run `muse prepare` "
                "again without --no-audio"
            )
        samples = self.dataset("audio/samples")
        in_memory = self._reserve(samples.size * samples.dtype.itemsize)
        return Audio(
            self, self.read("audio/video_offsets"), self.audio_rate,
            samples[()] if in_memory else None,
        )

    def _reserve(self, nbytes: int) -> bool:
        """Take `nbytes` from the memory budget if they fit; False means stream instead."""
        if nbytes > self._budget_left:
            return False
        self._budget_left -= nbytes
        return True


def _read_into(dataset: h5py.Dataset, out: np.ndarray) -> None:
    """All rows of `dataset` into `out`, a block of rows at a time: reading a set whole and
    then copying it into its columns would hold it twice, beyond the memory budget."""
    step = max(1, READ_BLOCK_BYTES // max(1, out.shape[1] * dataset.dtype.itemsize))
    for start in range(0, len(out), step):
        out[start:start + step] = dataset[start:start + step]


class MemoryRows:
    """Fused feature rows held in one numpy array: a window is a view of it."""

    in_memory = True

    def __init__(self, fused: np.ndarray) -> None:
        self.fused = fused
        self.dim = fused.shape[1]

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.fused[start:stop]


class StreamedRows:
    """Fused feature rows read from the file: one row range per feature set, each copied into
    its columns of one new array (from the memory map, see `Store.chunked`)."""

    in_memory = False

    def __init__(self, store: Store, paths: Sequence[str]) -> None:
        self.store = store
        self.paths = list(paths)
        datasets = [store.dataset(path) for path in self.paths]
        if len({ds.shape[0] for ds in datasets}) > 1:
            raise StoreError(f"{store.path}: {', '.join(self.paths)} differ in their numbers "
                             "of rows; run `muse prepare` again")
        self.dims = [ds.shape[1] for ds in datasets]
        self.dim = sum(self.dims)
        self.dtype = np.result_type(*(ds.dtype for ds in datasets))  # as np.concatenate's

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows `[start:stop]` of every feature set side by side: (rows, dim), a new array."""
        arrays = [self.store.chunked(path) for path in self.paths]
        if len(arrays) == 1:
            return arrays[0].read(start, stop)
        start, stop, _ = slice(start, stop).indices(len(arrays[0]))
        stop = max(start, stop)
        fused = np.empty((stop - start, self.dim), dtype=self.dtype)
        column = 0
        for array, dim in zip(arrays, self.dims, strict=True):
            array.read_rows(start, stop, fused[:, column:column + dim])
            column += dim
        return fused


class Audio:
    """The samples of each label step: step `t` ms is `[t*rate/1000, (t+250)*rate/1000)`."""

    dim = 1  # as a one-column row table (`read`), what `Normalizer.fit` reads

    def __init__(
        self, store: Store, offsets: np.ndarray, rate: int, samples: np.ndarray | None
    ) -> None:
        self.store = store
        self.offsets = offsets
        self.rate = rate
        self.samples = samples  # None: read from the file per call
        self.samples_per_step = rate * STEP_MS // 1000

    @property
    def in_memory(self) -> bool:
        return self.samples is not None

    @property
    def dataset(self) -> ChunkedArray:
        """The samples in the file (streamed audio), sliced through the store's memory map."""
        return self.store.chunked("audio/samples")

    def steps(self, video: int, timestamps: np.ndarray) -> np.ndarray:
        """(T, samples_per_step) float32 for the steps at `timestamps` of video index `video`.

        Samples past the end of the video's signal are zero.
        """
        first, end = int(self.offsets[video]), int(self.offsets[video + 1])
        starts = first + timestamps * self.rate // 1000
        width = self.samples_per_step
        out = np.empty((len(starts), width), dtype=np.float32)
        if not len(starts):
            return out
        flat = out.reshape(-1)
        # Runs of steps that follow each other in the signal (a whole window, nearly always;
        # a gap between segments splits it) are one block of samples each, scaled straight
        # into the result: no gather, no int16 copy.
        bounds = [0, *(np.flatnonzero(np.diff(starts) != width) + 1).tolist(), len(starts)]
        for run_start, run_stop in zip(bounds[:-1], bounds[1:], strict=True):
            begin = int(starts[run_start])
            stop = min(begin + (run_stop - run_start) * width, end)
            at = run_start * width
            if stop > begin:
                for piece in self._samples(begin, stop):
                    np.multiply(piece, _SCALE, out=flat[at:at + len(piece)])
                    at += len(piece)
            flat[at:run_stop * width] = 0.0  # past the end of the signal
        return out

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples `[start, stop)` of the whole signal, in [-1, 1), as a (n, 1) float32 column."""
        pieces = self._samples(start, stop)
        column = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.int16)
        return (column.astype(np.float32) * _SCALE)[:, None]

    def _samples(self, start: int, stop: int) -> list[np.ndarray]:
        """Samples `[start, stop)` as consecutive int16 pieces, without copying them."""
        if self.samples is not None:
            return [self.samples[start:stop]]
        return self.dataset.views(start, stop)

"""Writing one HDF5 store (docs/hdf5-store.md) video by video, atomically.

The store is written to a temporary file next to its destination and renamed into place only
after the `complete` attribute is set, so an interrupted prepare never leaves a file that looks
whole. Arrays grow per video (resizable datasets), so memory holds one video at a time.

The free space is checked against the store's estimated size before writing, a failed write
(full disk, quota, file size limit) becomes a `StoreError` instead of an HDF5 crash, and the
temporary file is removed on every way out of the writer, SIGTERM included; the temporary files
of processes killed outright are removed by the next prepare (`remove_stale_temp_files`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import threading
from pathlib import Path

import h5py
import numpy as np

from muse.errors import StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # the one version of the schema: the reader refuses any other
CHUNK_BYTES = 1 << 20  # ~1 MiB chunks: a 50-step window of any feature set is a few chunks
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
    chunk_rows = max(1, min(CHUNK_BYTES // row_bytes, 1 << 16))
    dataset = group.create_dataset(name, shape=shape, maxshape=(None, *values.shape[1:]),
                                   dtype=values.dtype, chunks=(chunk_rows, *values.shape[1:]))
    if values.ndim == 2:
        dataset.attrs["dim"] = values.shape[1]
    return dataset


_RESERVE_BYTES = 64 << 20  # room for the chunk cache and metadata beyond the estimate


class _GuardedFile(io.RawIOBase):
    """The temporary file as HDF5 sees it (h5py's file-object driver).

    HDF5 cannot recover from a failed write: it prints a traceback per cached chunk and crashes
    the process when the file is closed. So the first write that fails (a full disk, a quota, a
    file size limit, an I/O error) is kept in `failure`, and from then on writes are dropped and
    reads past the end give zeros: HDF5 carries on unharmed until the writer stops it with a
    `StoreError` after the video.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed in close()
        self.failure: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        count = self._file.readinto(buffer) or 0
        if self.failure is not None and count < len(buffer):
            memoryview(buffer)[count:] = bytes(len(buffer) - count)
            self._file.seek(len(buffer) - count, io.SEEK_CUR)
            return len(buffer)
        return count

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.failure is None:
            try:
                written = 0
                while written < len(view):
                    written += self._file.write(view[written:])
                return written
            except OSError as err:
                self.failure = err
                self._file.seek(len(view) - written, io.SEEK_CUR)
                return len(view)
        self._file.seek(len(view), io.SEEK_CUR)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._file.truncate(size)
        except OSError as err:
            self.failure = self.failure or err
            return self.tell() if size is None else size

    def flush(self) -> None:
        pass  # unbuffered: every write has reached the OS

    def close(self) -> None:
        self._file.close()
        super().close()


class StoreWriter:
    """Context manager around the temporary HDF5 file of one store.

    `expected_bytes`: the estimated size of the store; the disk must have that much free (and
    a reserve) before anything is written, and keep the reserve free after each video.
    """

    def __init__(self, path: Path, task: str, targets: list[str], fingerprint: str,
                 audio_rate: int, expected_bytes: int = 0, package: str = "") -> None:
        self.path = Path(path)
        self.tmp = temp_path(self.path, os.getpid())
        self.expected_bytes = expected_bytes
        self.attrs = {"schema_version": SCHEMA_VERSION, "task": task,
                      "targets": json.dumps(targets), "fingerprint": fingerprint,
                      "audio_rate": audio_rate, "package": package}
        self.raw: _GuardedFile | None = None
        self.file: h5py.File | None = None
        self.tables: dict[str, RowTable] = {}
        self._terminate = _TerminateAsExit()

    def __enter__(self) -> StoreWriter:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"{self.path.parent}: cannot create the output folder "
                             f"({err.strerror})") from None
        remove_stale_temp_files(self.path)
        self._terminate.install()
        try:
            self.raw = _GuardedFile(self.tmp)
        except OSError as err:
            self._terminate.restore()
            raise StoreError(f"{self.path.parent}: cannot write the store there "
                             f"({err.strerror})") from None
        try:
            self.file = h5py.File(self.raw, "w", rdcc_nbytes=_CHUNK_CACHE_BYTES,
                                  rdcc_nslots=10007)
            self.file.attrs.update(self.attrs)
            self._check_space(self.expected_bytes + _RESERVE_BYTES,
                              f"the store needs about {_size(self.expected_bytes)}")
        except BaseException:
            self._discard()
            raise
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

    def checkpoint(self) -> None:
        """After a video: write the cached chunks out and stop with a `StoreError` if a write
        failed or the disk no longer has the reserve free."""
        assert self.file is not None and self.raw is not None
        self.file.flush()
        if self.raw.failure is not None:
            raise self._full_error(self.raw.failure)
        self._check_space(_RESERVE_BYTES, "the disk filled up while writing")

    def finish(self, **attrs: object) -> None:
        """Close every table, write the final attributes and mark the store complete."""
        assert self.file is not None
        for table in self.tables.values():
            table.finish()
        for key, value in attrs.items():
            self.file.attrs[key] = json.dumps(value)
        self.checkpoint()
        self.file.attrs["complete"] = True

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.file is not None and self.raw is not None
        if exc_type is not None:
            self._discard()
            return
        complete = bool(self.file.attrs.get("complete", False))
        self._discard(keep=complete)
        if self.raw.failure is not None:
            self.tmp.unlink(missing_ok=True)
            raise self._full_error(self.raw.failure)
        if complete:
            os.replace(self.tmp, self.path)

    def _discard(self, keep: bool = False) -> None:
        """Close the temporary file, and delete it unless `keep`, whatever goes wrong."""
        try:
            if self.file is not None and self.file.id.valid:
                self.file.close()
        finally:
            if self.raw is not None:
                self.raw.close()
            if not keep:
                self.tmp.unlink(missing_ok=True)
            self._terminate.restore()

    def _full_error(self, failure: OSError) -> StoreError:
        return StoreError(f"{self.path}: writing the store failed: {failure.strerror}; "
                          f"{_size(_free_bytes(self.path.parent))} free in "
                          f"{self.path.parent}; nothing was kept")

    def _check_space(self, needed: int, why: str) -> None:
        free = _free_bytes(self.path.parent)
        if free < needed:
            raise StoreError(f"{self.path}: not enough free space in {self.path.parent}: {why}, "
                             f"{_size(free)} free (needs {_size(needed)}); free some space or "
                             "choose another --out")


class _TerminateAsExit:
    """While a store is written, SIGTERM (`kill`, a batch system's time limit) raises
    SystemExit, so the writer's way out removes the temporary file; Python's default would end
    the process on the spot. Only where the default is in place, from the main thread."""

    def __init__(self) -> None:
        self.installed = False

    def install(self) -> None:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
            signal.signal(signal.SIGTERM, _exit_on_terminate)
            self.installed = True

    def restore(self) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            self.installed = False


def _exit_on_terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def temp_path(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.name}.{pid}.tmp")


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Delete the temporary files of `path` whose writing process is gone (killed, out of
    memory, out of time); returns them. Files of running processes are left alone."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.tmp$")
    removed = []
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        match = pattern.match(candidate.name)
        if match is None or _alive(int(match.group(1))):
            continue
        candidate.unlink(missing_ok=True)
        log.warning("%s: removed the temporary file %s left by process %s, which is gone",
                    path, candidate.name, match.group(1))
        removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _size(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"

"""Row ranges of HDF5 datasets read straight from a memory map of the file.

Each h5py slice costs about 70-180 µs, however few rows it reads and even when the file is in
the page cache. That overhead dominates when a streamed loader reads one small window at a time.
An uncompressed dataset, though, keeps its bytes as they are in the file. HDF5 says where:
`get_offset` for a contiguous dataset, and `chunk_iter` or `get_chunk_info` for each chunk of a
chunked one. A chunk that spans whole rows is then a numpy view of a read-only map of the file,
and a row range is a slice of one chunk or of a few consecutive chunks.

`ChunkedArray` reads axis-0 ranges that way and returns the same array, byte for byte, that
`dataset[start:stop]` returns. Any dataset it cannot read so, or cannot vouch for, is read
through h5py. That covers filters (compression, shuffle, checksums, ...), non-native byte order,
types other than plain integers and floats, chunks that split rows, unallocated chunks,
external or virtual storage, and a map of some other file than the one HDF5 opened.

A map, like an h5py handle, belongs to the process that made it and is never pickled: `Store`
makes one per process (`map_file`) and builds its `ChunkedArray`s on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
from h5py import h5d

# What h5py's low-level calls raise when a query does not apply to a dataset, or is missing
# from this h5py/HDF5 build. Any of them means that the dataset is read through h5py.
_UNMAPPABLE = (AttributeError, KeyError, NotImplementedError, OSError, RuntimeError, TypeError,
               ValueError)


def map_file(path: str | Path, file: h5py.File) -> np.ndarray | None:
    """A read-only uint8 map of the file that `file` has open, or None when there is none.

    The path is mapped only if it still names the file HDF5 opened (same device and inode), so
    a store replaced in between is never read at another file's offsets. Mapping through a
    descriptor of our own, and not through HDF5's, leaves HDF5's file lock to its handle.
    """
    try:
        opened = os.fstat(file.id.get_vfd_handle())
        with open(path, "rb") as handle:
            ours = os.fstat(handle.fileno())
            if (ours.st_dev, ours.st_ino) != (opened.st_dev, opened.st_ino):
                return None
            mapped = np.memmap(handle, dtype=np.uint8, mode="r")
    except _UNMAPPABLE:
        return None
    # A plain ndarray: slicing a np.memmap costs more. Its views keep the map alive.
    return mapped.view(np.ndarray)


class ChunkedArray:
    """Axis-0 row ranges of one dataset, read from a file map where possible and h5py otherwise.

    `array[a:b]` and `array.read(a, b)` equal `dataset[a:b]` (the same dtype, shape and bytes,
    in a new writable array). `views(a, b)` gives the rows without copying them: read-only views
    of consecutive chunks, or a single array read by h5py. Any other key goes to h5py.
    """

    def __init__(self, dataset: h5py.Dataset, file_map: np.ndarray | None) -> None:
        self.dataset = dataset
        self.shape: tuple[int, ...] = dataset.shape
        self.dtype: np.dtype = dataset.dtype
        located = _locate(dataset, file_map) if file_map is not None else None
        self.mapped = located is not None
        # Rows per chunk, and each chunk as a (rows per chunk, *row shape) view of the map; a
        # contiguous dataset is a single chunk. The last chunk may extend past the last row.
        self._chunk_rows, self._chunks = located if located is not None else (0, [])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, slice) and key.step in (None, 1):
            return self.read(key.start, key.stop)
        return self.dataset[key]

    def read(self, start: int | None, stop: int | None, out: np.ndarray | None = None
             ) -> np.ndarray:
        """Rows `[start:stop]` (Python slice bounds), written into `out` when it is given.

        `out` must have the shape of the result; it is returned.
        """
        start, stop, _ = slice(start, stop).indices(self.shape[0])
        return self.read_rows(start, max(start, stop), out)

    def read_rows(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """`read` for bounds already within `0 <= start <= stop <= len(self)`."""
        if not self.mapped:
            if out is None:
                return self.dataset[start:stop]
            out[:] = self.dataset[start:stop]
            return out
        pieces = self._pieces(start, stop)
        if out is None:
            out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        if len(pieces) == 1:
            out[:] = pieces[0]
        else:
            row = 0
            for piece in pieces:
                out[row:row + len(piece)] = piece
                row += len(piece)
        return out

    def views(self, start: int | None, stop: int | None) -> list[np.ndarray]:
        """Rows `[start:stop]` as consecutive pieces that share the map's memory where mapped.

        The mapped pieces are read-only; copy what must outlive the store or be changed.
        """
        start, stop, _ = slice(start, stop).indices(self.shape[0])
        stop = max(start, stop)
        if not self.mapped:
            return [self.dataset[start:stop]]
        return self._pieces(start, stop)

    def _pieces(self, start: int, stop: int) -> list[np.ndarray]:
        """Views of rows `[start, stop)`, `0 <= start <= stop <= len`, chunk by chunk."""
        if start == stop:
            return [self._chunks[0][:0]]
        rows = self._chunk_rows
        index, begin = divmod(start, rows)
        end = begin + (stop - start)
        if end <= rows:  # nearly every window: inside one chunk
            return [self._chunks[index][begin:end]]
        pieces = [self._chunks[index][begin:]]
        end -= rows
        while end > rows:
            index += 1
            pieces.append(self._chunks[index])
            end -= rows
        pieces.append(self._chunks[index + 1][:end])
        return pieces


def _locate(dataset: h5py.Dataset, file_map: np.ndarray) -> tuple[int, list[np.ndarray]] | None:
    """(rows per chunk, a view of each chunk in row order) if the dataset's bytes lie in
    `file_map` exactly as numpy would hold them; None means read it through h5py."""
    shape, dtype = dataset.shape, dataset.dtype
    if (len(shape) == 0 or shape[0] == 0 or dtype.kind not in "iuf" or not dtype.isnative
            or dtype.itemsize > 8 or dtype.fields is not None):
        return None
    row_shape = shape[1:]
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize
    if row_bytes == 0:
        return None
    try:
        plist = dataset.id.get_create_plist()
        if plist.get_nfilters() or plist.get_external_count():
            return None
        layout = plist.get_layout()
        if layout == h5d.CONTIGUOUS:
            rows, addresses = shape[0], [dataset.id.get_offset()]
        elif layout == h5d.CHUNKED and tuple(dataset.chunks[1:]) == row_shape:
            rows = dataset.chunks[0]
            infos = _chunk_infos(dataset)
            expected = [(k * rows, *(0,) * len(row_shape)) for k in range(-(-shape[0] // rows))]
            if ([tuple(info.chunk_offset) for info in infos] != expected
                    or any(info.filter_mask or info.size != rows * row_bytes for info in infos)):
                return None
            addresses = [info.byte_offset for info in infos]
        else:  # compact or virtual storage
            return None
        chunks = []
        for address in addresses:
            if address is None or address < 0 or address + rows * row_bytes > len(file_map):
                return None
            chunk = file_map[address:address + rows * row_bytes]
            chunks.append(chunk.view(dtype).reshape(rows, *row_shape))
        # A last check that the map holds what HDF5 reads: the first and the last row.
        last = shape[0] - 1
        for row, chunk in ((0, chunks[0]), (last, chunks[last // rows])):
            at = row % rows
            if chunk[at:at + 1].tobytes() != dataset[row:row + 1].tobytes():
                return None
    except _UNMAPPABLE:
        return None
    return rows, chunks


def _chunk_infos(dataset: h5py.Dataset) -> list:
    """The StoreInfo of every allocated chunk, sorted by the chunk's logical offset."""
    infos: list = []
    try:
        dataset.id.chunk_iter(infos.append)  # one pass over the chunk index
    except (AttributeError, NotImplementedError):  # older HDF5: one query per chunk
        infos = [dataset.id.get_chunk_info(i) for i in range(dataset.id.get_num_chunks())]
    return sorted(infos, key=lambda info: tuple(info.chunk_offset))

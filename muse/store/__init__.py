"""The HDF5 store (docs/hdf5-store.md): what `muse prepare` makes of a package.

`writer` (the schema's one SCHEMA_VERSION, atomic writes), `reader` (lazy, per-process
handles; features in memory or streamed), `chunked` (streamed reads), `prepare` (package ->
store), `sources` and `demo` (where a run's store comes from). No torch: the torch side reads
stores in `muse.data`.
"""

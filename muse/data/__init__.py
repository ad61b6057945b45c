"""Data: the official package layout, the synthetic generator, the HDF5 store and datamodules."""

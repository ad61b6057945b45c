"""The torch side of the data: datasets, the LightningDataModule, normalisation, sharding.

They read HDF5 stores (`muse.store`), which `muse prepare` makes from the package
(`muse.package`).
"""

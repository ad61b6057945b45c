"""The official CSV package, the side of the file format muse reads from and writes to.

`layout` (folders, feature sets, table columns), `reader` (the package's CSVs read with named
errors), `synthetic` (a package generated on the fly: the demo and the tests), `extract` (a
package made from new media). Nothing here imports torch.
"""

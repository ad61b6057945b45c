"""The built-in demo: a synthetic MuSe-CaR generated and prepared once inside a data directory.

The demo only ever goes into an empty data directory or one it made itself. A marker file
there (`DEMO_MARKER`) names the stores the demo prepared, with the fingerprint each was written
with, so that

* a store prepared from the real package is never overwritten by the demo, nor joined by it
  (`foreign_contents` says what keeps the demo out of a folder);
* a run can tell that it trains on the demo (`is_demo_store`) and say so.

A store is entered in the marker before it is prepared (`null`) and gets its fingerprint once
it is written, so a demo interrupted in between still owns what it left.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from muse.errors import MuseError
from muse.package.layout import PARTITION_FILE
from muse.store.prepare import prepare, store_path
from muse.store.reader import fingerprint
from muse.tasks import TASKS

log = logging.getLogger(__name__)

DEMO_PACKAGE = "synthetic_package"
DEMO_MARKER = ".muse-demo.json"


def ensure_demo(data_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Generate the demo package under `data_dir` unless it exists, then prepare its stores.

    Preparing an unchanged package does no work, so calling this on every run is cheap.
    Refused (MuseError) in a folder that is neither empty nor the demo's.
    """
    from muse.package.synthetic import synthesize

    data_dir = Path(data_dir)
    foreign = foreign_contents(data_dir)
    if foreign:
        older = ((data_dir / DEMO_PACKAGE).is_dir() and not (data_dir / DEMO_MARKER).exists())
        hint = (f" (a demo made by an older muse has no marker {DEMO_MARKER}: remove the "
                "folder to make it again)" if older else "")
        raise MuseError(f"{data_dir} is neither empty nor the synthetic demo's (it holds "
                        f"{', '.join(foreign)}): the demo is not put there, to leave that data "
                        f"as it is; choose an empty folder for it{hint}")
    data_dir.mkdir(parents=True, exist_ok=True)
    stores = _marked_stores(data_dir) or {}
    _write_marker(data_dir, stores)
    package = data_dir / DEMO_PACKAGE
    if not (package / PARTITION_FILE).exists():
        log.info("no synthetic package in %s: generating the demo MuSe-CaR (seed %d)", data_dir,
                 seed)
        synthesize(package, seed=seed)
    prepared = {}
    for task in TASKS:
        name = store_path(data_dir, task).name
        stores.setdefault(name, None)  # the demo's from now on, even if interrupted
        _write_marker(data_dir, stores)
        prepared[task] = prepare(package, data_dir, tasks=[task])[task]
        stores[name] = fingerprint(prepared[task])
        _write_marker(data_dir, stores)
    return prepared


def foreign_contents(data_dir: Path) -> list[str]:
    """What in `data_dir` keeps the demo out ([]: nothing, the demo may be made there).

    An unmarked folder must be empty (hidden files aside, such as the prepare lock) or hold
    only the demo package; in a marked one, every store must be one the demo prepared.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return [] if not data_dir.exists() else [f"{data_dir} (a file)"]
    entries = sorted(p for p in data_dir.iterdir() if not p.name.startswith("."))
    stores = _marked_stores(data_dir)
    if stores is None:
        return [p.name for p in entries if p.name != DEMO_PACKAGE]
    return [f"{p.name} (not the demo's)" for p in entries
            if p.suffix == ".h5" and not _demo_owns(stores, p)]


def is_demo_store(path: Path) -> bool:
    """Whether `path` is a store the demo prepared (and nothing has rewritten since)."""
    path = Path(path)
    stores = _marked_stores(path.parent)
    return stores is not None and path.is_file() and _demo_owns(stores, path)


def _demo_owns(stores: dict[str, str | None], path: Path) -> bool:
    if path.name not in stores:
        return False
    recorded = stores[path.name]
    return recorded is None or fingerprint(path) == recorded


def _marked_stores(data_dir: Path) -> dict[str, str | None] | None:
    """The marker's {store file: fingerprint} (None: the folder is not the demo's)."""
    marker = Path(data_dir) / DEMO_MARKER
    if not marker.is_file():
        return None
    try:
        stores = json.loads(marker.read_text())["stores"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MuseError(f"{marker}: unreadable demo marker ({error}); delete it if {data_dir} "
                        "holds only the synthetic demo") from error
    return dict(stores)


def _write_marker(data_dir: Path, stores: dict[str, str | None]) -> None:
    marker = data_dir / DEMO_MARKER
    partial = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    text = json.dumps({"package": DEMO_PACKAGE, "stores": stores}, indent=2, sort_keys=True)
    partial.write_text(text)
    partial.replace(marker)

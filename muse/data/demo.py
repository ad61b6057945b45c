"""The built-in demo: a synthetic MuSe-CaR generated and prepared once inside a data directory."""

from __future__ import annotations

import logging
from pathlib import Path

from muse.data.layout import PARTITION_FILE
from muse.data.prepare import prepare

log = logging.getLogger(__name__)

DEMO_PACKAGE = "synthetic_package"


def ensure_demo(data_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Generate the demo package under `data_dir` unless it exists, then prepare its stores.

    Preparing an unchanged package does no work, so calling this on every run is cheap.
    """
    from muse.data.synthetic import synthesize

    data_dir = Path(data_dir)
    package = data_dir / DEMO_PACKAGE
    if not (package / PARTITION_FILE).exists():
        log.info("no synthetic package in %s: generating the demo MuSe-CaR (seed %d)", data_dir,
                 seed)
        synthesize(package, seed=seed)
    return prepare(package, data_dir)

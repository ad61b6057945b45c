"""Prepare throughput: `muse prepare` against a plain pandas read of the same CSV files.

Generates a synthetic package, reads every CSV that prepare reads with `pandas.read_csv`
(the reference), then prepares the package; prints both times and their ratio
(goal: prepare costs at most 1.5x reading the CSVs). Run:

    python benchmarks/prepare_throughput.py --videos 24 --minutes 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from muse.package.layout import task_dir
from muse.package.synthetic import synthesize
from muse.store.prepare import prepare
from muse.tasks import TASKS


def package_csvs(package: Path) -> list[Path]:
    """Every CSV prepare reads: features, labels and transcripts of the three sub-challenges."""
    files = []
    for task in TASKS:
        root = task_dir(package, task)
        files += [p for p in root.rglob("*.csv") if "aggregated" not in p.parts]
    return sorted(files)


def warm(paths: list[Path]) -> None:
    """Read every byte once so both timings see the same (warm) page cache."""
    for path in paths:
        path.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--features", default="egemaps,lld,fasttext,vggface,au,xception")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        package = synthesize(Path(tmp) / "package", videos=args.videos, minutes=args.minutes,
                             seed=args.seed, features=args.features.split(","))
        csvs = package_csvs(package)
        warm(csvs)
        wavs = sorted(package.rglob("*.wav"))
        warm(wavs)

        start = time.perf_counter()
        for path in csvs:
            pd.read_csv(path)
        pandas_s = time.perf_counter() - start

        start = time.perf_counter()
        prepare(package, Path(tmp) / "data", audio_rate=0)
        prepare_s = time.perf_counter() - start

        start = time.perf_counter()
        prepare(package, Path(tmp) / "data_audio")
        audio_s = time.perf_counter() - start

        start = time.perf_counter()
        prepare(package, Path(tmp) / "data_audio")
        rerun_s = time.perf_counter() - start

        size_mb = sum(p.stat().st_size for p in csvs) / 2**20
    result = {
        "csv_files": len(csvs), "csv_mb": round(size_mb, 1),
        "pandas_read_s": round(pandas_s, 2), "prepare_s": round(prepare_s, 2),
        "ratio_prepare_over_pandas": round(prepare_s / pandas_s, 2),
        "prepare_with_audio_s": round(audio_s, 2), "rerun_unchanged_s": round(rerun_s, 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""The files `muse predict` writes per video: `<name>.csv` and `<name>.png`.

`<name>` is the media file's stem (the package's `metadata/media.csv`, written by `muse
extract`), else the video id. MuSe-Wild and MuSe-Trust: one row per 250 ms label step,
`timestamp,segment_id,prediction_<target>...` (ms, the package's segment ids). MuSe-Topic: one
row per segment, `segment_id,start,end,prediction_<target>...,probability_<target>_<class>...`
(start and end in ms, the class ids of the package's label files, the probabilities of each
target summing to 1).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from muse.package.extract.package import MEDIA_FILE
from muse.predict.figures import figure
from muse.tasks import TASKS


def video_names(package: Path) -> dict[int, str]:
    """{video id: name}: the media file's stem where the package records it."""
    path = Path(package) / MEDIA_FILE
    if not path.is_file():
        return {}
    media = pd.read_csv(path)
    return {int(i): Path(str(f)).stem for i, f in zip(media["Id"], media["file"], strict=True)}


def with_times(predictions: pd.DataFrame, times: pd.DataFrame, task: str) -> pd.DataFrame:
    """The predictions with each row's place in its video (`muse.predict.rows.row_times`)."""
    keys = list(TASKS[task].key)
    joined = times.merge(predictions, on=keys, how="inner", validate="one_to_one")
    assert len(joined) == len(predictions), "predicted rows the store does not have"
    values = [c for c in predictions.columns if c not in keys]
    place = [c for c in times.columns if c not in ("id", *values)]
    return joined[["id", *place, *values]]


def write_videos(frame: pd.DataFrame, task: str, names: dict[int, str], out: Path) -> list[Path]:
    """`<name>.csv` and `<name>.png` of each video of `frame` (with its times) in `out`."""
    written = []
    for video, rows in frame.groupby("id", sort=True):
        name = names.get(int(video), str(video))
        table = rows.drop(columns="id")
        csv = out / f"{name}.csv"
        table.to_csv(csv, index=False)
        png = out / f"{name}.png"
        figure(table, task, name).savefig(png, dpi=110)
        written += [csv, png]
    return written

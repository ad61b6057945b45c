"""Hydra's compose of conf/train.yaml (or conf/evaluate.yaml) as the tests build their
configurations: the tests' one way to do it."""

from __future__ import annotations

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose(*overrides: str, name: str = "train", root: Path | None = None,
            data: Path | None = None, hydra: bool = False) -> DictConfig:
    """conf/`name`.yaml with `overrides` applied after the folders given: `root` holds the
    run's logs (`paths.root_dir`) and its outputs under `out/`, `data` is the folder of the
    HDF5 stores (`data.dir`). A later override of the same key wins. `hydra` keeps the `hydra`
    node (sweeper, launcher, callbacks)."""
    folders = [] if root is None else [f"paths.root_dir={root}", f"paths.output_dir={root}/out"]
    if data is not None:
        folders.append(f"data.dir={data}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(name, overrides=[*folders, *overrides], return_hydra_config=hydra)

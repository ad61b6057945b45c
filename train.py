"""Train a MuSe 2020 baseline: `python train.py [task=...] [model=...] [features=...]`.

The configs are in conf/ (see conf/README.md); the work is `muse.training.train`.
"""

import hydra
from omegaconf import DictConfig

from muse.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    result = train(cfg)
    devel = result.get("devel") or {}
    # The value Hydra sweepers optimise: the monitored devel score.
    return devel.get("score", devel.get("topic_score"))


if __name__ == "__main__":
    main()

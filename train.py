"""Train a MuSe 2020 baseline: `python train.py [task=...] [model=...] [features=...]`.

The configs are in conf/ (see conf/README.md); the work is `muse.training.train`.
"""

import hydra
from omegaconf import DictConfig

from muse.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    devel = train(cfg).get("devel") or {}
    # The value Hydra sweepers optimise: the official devel score (MuSe-Topic: the mean of the
    # topic and emotion scores, as the monitored devel/score).
    if "topic_score" in devel:
        return (devel["topic_score"] + devel["emotion_score"]) / 2
    return devel.get("score")


if __name__ == "__main__":
    main()

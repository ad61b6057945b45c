"""Evaluate a trained model: `python evaluate.py run_id=<mlflow run>` or `ckpt=<file>`.

Predicts devel and test, scores them with the official scorer, writes the submission file
`test.csv` and logs both to the run; the work is `muse.evaluation.evaluate`.
"""

import hydra
from omegaconf import DictConfig

from muse.evaluation import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()

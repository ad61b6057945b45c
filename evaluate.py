"""Evaluate a trained model: `python evaluate.py run_id=<mlflow run>` or `ckpt=<file>`.

Predicts devel and test, scores them with the official scorer, writes the submission file
`test.csv` and logs both to the run; the work is `muse.runs.evaluate.evaluate`. A muse error (a
missing or corrupt checkpoint, an unknown run) prints as one line; HYDRA_FULL_ERROR=1 shows
its traceback.
"""

import hydra
from omegaconf import DictConfig

from muse.runs.evaluate import evaluate
from muse.shell import one_line_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@one_line_errors("evaluate.py")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()

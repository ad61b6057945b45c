"""Train a MuSe 2020 baseline: `python train.py [task=...] [model=...] [features=...]`.

The configs are in conf/ (see conf/README.md); the work is `muse.runs.train.train`. A muse error
(bad input or configuration) prints as one line; HYDRA_FULL_ERROR=1 shows its traceback.
"""

import hydra
from omegaconf import DictConfig

from muse.distributed import is_global_zero
from muse.shell import one_line_errors


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@one_line_errors("train.py")
def main(cfg: DictConfig) -> float | None:
    # Imported here: the process that launches a parallel sweep never needs torch.
    from muse.runs.train import train

    result = train(cfg)
    if not is_global_zero():  # another process of a DDP run, sharing rank 0's run folder
        return None
    result.write(cfg.paths.output_dir)  # what the job did, for a sweep's summary
    return result.objective(cfg.task.name)


if __name__ == "__main__":
    main()

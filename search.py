"""Search hyperparameters with Optuna: `python search.py hparams_search=<baseline>_<task>`.

The search files are conf/hparams_search/ (see conf/README.md); every other argument is a
training override, as for train.py. The work is `muse.search.study.run_search`.
"""

import sys
from pathlib import Path

from hydra.errors import HydraException

from muse.errors import MuseError
from muse.search.study import configure_logging, run_search

CONF = Path(__file__).resolve().parent / "conf"


def main(argv: list[str]) -> int:
    configure_logging()
    try:
        record = run_search(CONF, argv)
    except (MuseError, HydraException) as error:
        print(f"search.py: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nSearch interrupted. The same command continues the study: the interrupted "
              "trial runs again first, its run continuing from its last checkpoint.",
              file=sys.stderr)
        return 130
    return 0 if record else 1  # no trial finished


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

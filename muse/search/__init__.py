"""Hyperparameter search with Optuna: `python search.py hparams_search=<baseline>_<task>`.

space: a search file's parameters as Optuna distributions, a trial as Hydra overrides;
study: the study itself (storage, trials as training runs, continuing, parallel workers, the
best trial's record); guard: `python train.py` refuses a search config instead of training
once with its defaults.
"""

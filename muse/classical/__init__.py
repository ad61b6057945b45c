"""Classical (scikit-learn) baselines: the paper's linear SVM for MuSe-Topic.

`segments` turns a topic store into one mean feature vector per segment, `svm` sweeps, fits
and saves the SVMs, and `harness` runs them through `train.py` and `evaluate.py` with the
same MLflow records and submission files as the neural baselines.
"""

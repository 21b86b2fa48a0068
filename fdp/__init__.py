"""fdp — the science library of fdp-sweep: the FDP model, its variants, data, dynamic images,
training of one fold, metrics and statistics. Imports neither Ray, MLflow nor Optuna."""

__version__ = "0.1.0"

"""Layer 5 (beside report), search: an Optuna study as a job source of the run layer's scheduler
(`study.py`); the honest subject split it relies on lives in `fdp.objective`."""

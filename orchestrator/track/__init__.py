"""Layer 3, track: what the system writes to and reads from MLflow -- experiments, parent, study
and trial runs, one run per fold job with its record, pooled metrics and figures: where the store is and
writing to it (`store.py`), which code made a run (`provenance.py`), what the driver creates and pools
(`driver.py`), what a worker logs into its job's run (`worker.py`)."""

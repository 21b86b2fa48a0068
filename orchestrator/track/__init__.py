"""Layer 3, track: what the system writes to and reads from MLflow -- experiments, parent, study
and trial runs, one run per fold job with its record, pooled metrics and figures (`tracking.py`)."""

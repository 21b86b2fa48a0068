"""Layer 4, run: THE scheduler of fold jobs on Ray for sweeps and searches alike (`scheduler.py`:
bounded concurrency, retries from checkpoints, cancellation; `run_sweep` for a sweep's plan), the
one worker function (`worker.py`), progress lines (`progress.py`), one driver per sweep or
study (`lease.py`), how many jobs a node runs at once (`packing.py`) and the dry-run table with the
memory estimate (`dry_run.py`)."""

"""Layer 2, plan: a spec's configurations -> fold jobs with their keys (config + fold + data
fingerprint; `jobs.py`), and the dry-run table with the memory estimate (`dry_run.py`)."""

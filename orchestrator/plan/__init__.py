"""Layer 2, plan: a spec's configurations -> fold jobs with their keys (config + fold + data
fingerprint; `jobs.py`). What running them would take (the dry run): `orchestrator.run.dry_run`."""

"""orchestrator — sweep specs, Ray scheduling, Optuna search, MLflow tracking, tables, CLI."""

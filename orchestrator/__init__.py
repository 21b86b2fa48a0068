"""orchestrator -- many folds of the fdp model, run and turned into tables, in layers:
spec -> plan -> track -> run -> search | report -> cli (imports only go down: docs/architecture.md)."""

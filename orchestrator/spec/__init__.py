"""Layer 1, spec: a sweep file parsed and validated against its schema (`schema.py`, declared once
with pydantic: validation, defaults, the docs table, the JSON Schema of `fdp-sweep schema`) into a
`SweepSpec` and its configurations (`sweep.py`). Imports no other orchestrator layer."""

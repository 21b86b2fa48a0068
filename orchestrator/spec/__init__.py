"""Layer 1, spec: a sweep file parsed and validated against its schema (`schema.py`, declared once
with pydantic: validation and defaults; its errors told one line each by `errors.py`; the docs table
and the JSON Schema of `fdp-sweep schema` by `docs.py`) into a `SweepSpec` and its configurations
(`sweep.py`). Imports no other orchestrator layer."""

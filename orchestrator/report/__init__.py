"""Layer 5 (beside search), report: the paper's tables and figures from the tracked runs
(`summarize.py`, `tables.py`, `megc.py`), the paper's reference numbers (`reference.py`,
`reference/*.yaml`) and the datasets' counts beside Tables 1-3 (`datasets.py`)."""

"""Layer 5 (beside search), report: the paper's tables and figures from the tracked runs
(`summarize.py` collects the runs, `analysis.py` computes the statistics, `tables.py` and `megc.py`
lay them out), the significance results written back to the parent runs (`significance.py`), the
paper's reference numbers (`reference.py`, `reference/*.yaml`) and the datasets' counts beside
Tables 1-3 (`datasets.py`)."""

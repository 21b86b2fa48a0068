"""Layer 6, cli: the `fdp-sweep` command (`main.py`) and one module per command group."""

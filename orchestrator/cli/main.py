"""The `fdp-sweep` command line: thin wrappers over fdp (science) and orchestrator (system)."""

from __future__ import annotations

import click

# commands live beside the code they drive; the CLI module only assembles them
from orchestrator.cli.data import datasets_cmd, merge_cmd, prepare_cmd, synth_cmd
from orchestrator.cli.demo import demo_cmd
from orchestrator.cli.run import run_cmd
from orchestrator.cli.schema import schema_cmd
from orchestrator.cli.search import search_cmd
from orchestrator.cli.submit import submit_cmd
from orchestrator.cli.summarize import summarize_cmd
from orchestrator.cli.train import train_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]},
             commands=[synth_cmd, prepare_cmd, datasets_cmd, merge_cmd, train_cmd, run_cmd, submit_cmd, search_cmd,
                       schema_cmd, summarize_cmd, demo_cmd])
@click.version_option(package_name="fdp-sweep")
def main() -> None:
    """Reproduce and extend the FDP micro-expression paper: prepare data, train folds,
    run sweeps on Ray, track in MLflow, and print the paper's tables."""


@main.command("list-variants")
def list_variants_cmd() -> None:
    """List the registered model variants with their parameter counts (5-class setting)."""
    from fdp.model import count_parameters, build_model
    from fdp.variants import build_config, list_variants

    click.echo(f"{'variant':<18} {'params (M)':>10}  description")
    for v in list_variants():
        cfg = build_config(v.name, {"model.num_classes": 5})
        n = "—" if cfg.model.baseline else f"{count_parameters(build_model(cfg.model)) / 1e6:.2f}"
        click.echo(f"{v.name:<18} {n:>10}  {v.description}")


if __name__ == "__main__":
    main()

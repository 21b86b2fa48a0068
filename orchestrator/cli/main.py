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


CLASSES = 5  # the class count the listings count parameters at (CASME II / SAMM 5-class)


@main.command("list-variants")
def list_variants_cmd() -> None:
    """List the registered variants: the method each runs, its exact parameter count (5 classes)
    and what it is; a published count beside ours where there is one."""
    from fdp.methods import get_method
    from fdp.variants import build_config, list_variants

    click.echo(f"{'variant':<18} {'method':<13} {'params':>12}  description")
    for v in list_variants():
        cfg = build_config(v.name, {"model.num_classes": CLASSES})
        n = get_method(cfg.method).params(cfg)
        ref = f" [{v.ref_params_source}: {v.ref_params:,}]" if v.ref_params else ""
        click.echo(f"{v.name:<18} {cfg.method:<13} {n:>12,}  {v.description}{ref}")


@main.command("list-methods")
def list_methods_cmd() -> None:
    """List the registered methods: paper, input, and exact parameter count (5 classes, at the
    config of the first variant that names the method)."""
    from fdp.methods import list_methods
    from fdp.variants import build_config, list_variants

    for m in list_methods():
        names = [v.name for v in list_variants() if v.method == m.name]
        cfg = build_config(names[0], {"model.num_classes": CLASSES}) if names else None
        click.echo(f"{m.name}")
        click.echo(f"  paper:    {m.paper}")
        if cfg is not None:
            click.echo(f"  input:    {m.input(cfg)}")
            click.echo(f"  params:   {m.params(cfg):,} ({m.params_note}; {names[0]}, {CLASSES} classes)")
            for name in names[1:]:  # a variant that sees something else says so
                other = m.input(build_config(name, {"model.num_classes": CLASSES}))
                if other != m.input(cfg):
                    click.echo(f"  input of {name}: {other}")
        click.echo(f"  variants: {', '.join(names) or '(none registered)'}")


if __name__ == "__main__":
    main()

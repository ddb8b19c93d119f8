"""`prox stats`: the summary of a finished (or partial) run."""

from __future__ import annotations

import click

from prox.cli.summary import print_summary
from prox.pipeline import OutputLayout


@click.command()
@click.argument("output_path", metavar="OUTPUT")
@click.option("--json", "as_json", is_flag=True, help="Print OUTPUT/stats.json as it is.")
def stats(output_path: str, as_json: bool) -> None:
    """Print the statistics of the run in OUTPUT."""
    layout = OutputLayout(output_path)
    if not layout.folder.isfile("stats.json"):
        raise click.ClickException(f"no stats.json in {output_path}: is it the output of a prox run?")
    data = layout.read_json("stats.json")
    if as_json:
        click.echo(layout.folder.open("stats.json", "rt").read())
    else:
        print_summary(data)

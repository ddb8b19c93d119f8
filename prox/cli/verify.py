"""`prox verify`: proof that a run lost nothing."""

from __future__ import annotations

import dataclasses

import click
import orjson

from prox.pipeline import OutputLayout
from prox.pipeline.reconcile import reconcile

_HEADINGS = {
    "missing": "input documents in no output",
    "duplicated": "input documents in more than one output row",
    "unexplained": "output rows that no input document accounts for",
    "misplaced": "rows with another id than their input row, or in the wrong folder",
    "stats_disagree": "stats.json against the files",
    "unfinished_shards": "shards not done, or input files not readable to the end",
}


@click.command()
@click.argument("input_path", metavar="INPUT")
@click.argument("output_path", metavar="OUTPUT")
@click.option("--text-key", default=None, help="Text column of INPUT [default: the run's, from OUTPUT/logs].")
@click.option("--id-key", default=None, help="Id column of INPUT [default: the run's].")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def verify(input_path: str, output_path: str, text_key: str | None, id_key: str | None, as_json: bool) -> None:
    """Check that every document of INPUT is in exactly one place in OUTPUT (the refined files or
    excluded/), under its id, and that OUTPUT/stats.json agrees with the files. Exit status 0 only
    when everything reconciles."""
    layout = OutputLayout(output_path)
    settings = layout.read_json("logs/settings.json") if layout.folder.isfile("logs/settings.json") else {}
    try:
        result = reconcile(input_path, output_path, text_key or settings.get("text_key", "text"),
                           id_key or settings.get("id_key", "id"))
    except OSError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(orjson.dumps(dataclasses.asdict(result) | {"ok": result.ok}, option=orjson.OPT_INDENT_2))
    else:
        for note in result.notes:
            click.echo(f"input: {note}")
        click.echo(f"input documents {result.input_rows}, output rows {result.output_rows}")
        for kind, heading in _HEADINGS.items():
            if count := result.counts[kind]:
                click.echo(f"{heading}: {count}")
                for line in getattr(result, kind):
                    click.echo(f"  {line}")
                if count > len(getattr(result, kind)):
                    click.echo(f"  ... and {count - len(getattr(result, kind))} more")
        click.echo("OK: every input document is accounted for once" if result.ok else "NOT RECONCILED")
    if not result.ok:
        raise SystemExit(1)

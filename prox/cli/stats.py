"""`prox stats`: the summary of a finished (or partial) run."""

from __future__ import annotations

import click
import orjson

from prox.cli.summary import print_summary
from prox.pipeline import OutputLayout, list_input, merge_summaries
from prox.pipeline.slurm_jobs import describe_last_job

_COUNTS = ("input", "kept", "modified", "dropped")


@click.command()
@click.argument("output_path", metavar="OUTPUT")
@click.option("--input", "-i", "input_path", default=None,
              help="The run's input: count from the shard summaries in OUTPUT/logs/ as they are now (a run "
              "still going, e.g. on Slurm) instead of reading OUTPUT/stats.json, written when a run ends.")
@click.option("--shards", "by_shard", is_flag=True,
              help="One line per shard: done, failed (with the error), pending or limited (a --limit "
              "preview), with its documents, kept, modified and dropped.")
@click.option("--json", "as_json", is_flag=True,
              help="Print OUTPUT/stats.json as it is (with --input: the statistics counted now).")
def stats(output_path: str, input_path: str | None, by_shard: bool, as_json: bool) -> None:
    """Print the statistics of the run in OUTPUT."""
    layout = OutputLayout(output_path)
    if input_path is not None:
        data = _count_now(layout, input_path, output_path)
        if as_json:
            click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
            return
    else:
        if not layout.folder.isfile("stats.json"):
            raise click.ClickException(f"no stats.json in {output_path}: is it the output of a prox run? "
                                       "For a run that has not ended, give --input IN to count its shards now.")
        if as_json:
            click.echo(layout.folder.open("stats.json", "rt").read())
            return
        data = layout.read_json("stats.json")
    if by_shard:
        print_shards(data, layout)
    print_summary(data)
    if input_path is not None and (job := describe_last_job(layout)):
        click.echo(job)


def _count_now(layout: OutputLayout, input_path: str, output_path: str) -> dict:
    """The run's statistics from the shard summaries in OUTPUT/logs/, for the shards of the input now."""
    if not layout.folder.isdir(""):
        raise click.ClickException(f"output {output_path} does not exist")
    try:
        shards = list_input(input_path).files
    except OSError as error:
        raise click.ClickException(str(error)) from error
    if not shards:
        raise click.ClickException(f"no input files (.parquet, .jsonl, .jsonl.gz, .json.gz) under {input_path}")
    return merge_summaries(layout, shards)


def print_shards(data: dict, layout: OutputLayout) -> None:
    """One line per shard, in name order: its status and counts, or the error that failed it."""
    counted = data["per_shard"]
    # stats.json files written before limited_shards existed: a counted shard without a summary is a preview
    limited = set(data.get("limited_shards", [s for s in counted if not layout.is_done(s)]))
    status = {s: "limited" if s in limited else "done" for s in counted}
    status |= {s: "failed" for s in data["failed_shards"]} | {s: "pending" for s in data["pending_shards"]}
    width = max([len("shard"), *(len(s) for s in status)])
    click.echo(f"{'shard':<{width}}  {'status':<9}" + "".join(f"{c:>11}" for c in ("documents", *_COUNTS[1:])))
    for shard in sorted(status):
        line = f"{shard:<{width}}  {status[shard]:<9}"
        if shard in counted:
            line += "".join(f"{counted[shard][c]:>11}" for c in _COUNTS)
            if status[shard] == "limited":
                line += "  (preview: --limit stopped reading)"
        elif status[shard] == "failed":
            line += "  " + " ".join(str(data["failed_shards"][shard]).split())
        click.echo(line.rstrip())

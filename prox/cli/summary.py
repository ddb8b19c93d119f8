"""Prints a run's statistics as a short table."""

from __future__ import annotations

import click

from prox.pipeline.output_names import renamed_note


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def print_summary(stats: dict) -> None:
    total = stats["input"]
    shards = stats["shards"]
    limited = f", {shards['limited']} previewed (--limit)" if shards.get("limited") else ""
    click.echo(f"\nshards: {shards['done']}/{shards['total']} done{limited}, {shards['failed']} failed, "
               f"{shards['pending']} pending")
    click.echo(f"{'documents':<28}{total:>10}")
    for action in ("kept", "modified", "dropped"):
        click.echo(f"  {action:<26}{stats[action]:>10} {_share(stats[action], total)}")
    for reason, count in stats["dropped_by_reason"].items():
        click.echo(f"    {reason:<24}{count:>10} {_share(count, total)}")
    words_kept = stats["words_after"]
    click.echo(f"{'words in':<28}{stats['words_before']:>10}")
    click.echo(f"{'words out':<28}{words_kept:>10} {_share(words_kept, stats['words_before'])}")
    found = {k: v for k, v in stats["diagnostics"].items() if v}
    if found:
        click.echo("diagnostics: " + ", ".join(f"{k} {v}" for k, v in found.items()))
    probabilities = stats.get("doc_drop_probabilities", {})
    if probabilities.get("judged"):
        click.echo(f"doc drop probability ({probabilities['judged']} judged): "
                   + " ".join(f"{k} {v}" for k, v in probabilities["histogram"].items() if v))
    for note in stats.get("input_notes", []):
        click.echo(f"input: {note}")
    for shard, name in stats.get("output_names", {}).items():
        click.echo(f"output: {renamed_note(shard, name)}")
    for shard, error in stats["failed_shards"].items():
        click.echo(f"FAILED {shard}: {error}", err=True)

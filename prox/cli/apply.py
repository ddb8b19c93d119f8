"""`prox apply`: re-run programs stored with the documents, without any model."""

from __future__ import annotations

import click

from prox.cli.jobs import run_job
from prox.cli.options import policy_from, policy_options, run_options
from prox.cli.summary import print_summary
from prox.pipeline import ApplyPrograms, ShardReader, ShardStats, ShardWriter


@click.command()
@run_options
@policy_options
def apply(input_path: str, output_path: str, text_key: str, id_key: str, tasks: int, workers: int, overwrite: bool,
          threshold_1: float, threshold_2: float, error_op: int, min_words: int, strict: bool) -> None:
    """Execute the programs stored in each document's metadata (doc_program, then chunk_program) on
    its text, and write kept and modified documents to OUTPUT, dropped ones to OUTPUT/excluded/.

    Use it to audit stored programs or to re-run them with other thresholds. Shards already done in
    OUTPUT are not redone."""
    policy = policy_from(threshold_1, threshold_2, error_op, min_words, strict)

    def pipeline(shards: list[str]) -> list:
        return [
            ShardReader(input_path, output_path, shards, text_key=text_key, id_key=id_key),
            ApplyPrograms(policy),
            ShardWriter(output_path),
            ShardStats(output_path),
        ]

    settings = {"command": "apply", "policy": policy.to_dict(), "text_key": text_key, "id_key": id_key}
    stats = run_job(input_path, output_path, pipeline, settings, tasks=tasks, workers=workers, overwrite=overwrite)
    if not stats["ran_shards"]:
        click.echo(f"nothing to do: all {stats['shards']['total']} shards are already done in {output_path}")
    print_summary(stats)
    if stats["failed_shards"] or stats["pending_shards"]:
        raise SystemExit(1)

"""`prox apply`: re-run programs stored with the documents, without any model."""

from __future__ import annotations

import click

from prox.cli.jobs import finish, run_job
from prox.cli.options import executor_options, policy_options, run_options
from prox.execution import Policy
from prox.pipeline import ApplyPrograms, ShardReader, ShardStats, ShardWriter
from prox.pipeline.executors import ExecutorSettings


@click.command()
@run_options
@executor_options
@policy_options
def apply(input_path: str, output_path: str, text_key: str, id_key: str, tasks: int, workers: int, overwrite: bool,
          executor: ExecutorSettings, policy: Policy) -> None:
    """Execute the programs stored in each document's metadata (doc_program, then chunk_program) on
    its text, and write kept and modified documents to OUTPUT, dropped ones to OUTPUT/excluded/.

    Use it to audit stored programs or to re-run them with other thresholds: --drop-threshold decides
    again from the stored metadata.doc_drop_probability (a document the run dropped has no chunk
    program, so one kept now stays unchanged). Shards already done in OUTPUT are not redone."""

    def pipeline(shards: list[str]) -> list:
        return [
            ShardReader(input_path, output_path, shards, text_key=text_key, id_key=id_key),
            ApplyPrograms(policy),
            ShardWriter(output_path),
            ShardStats(output_path),
        ]

    settings = {"command": "apply", "policy": policy.to_dict(), "text_key": text_key, "id_key": id_key}
    finish(run_job(input_path, output_path, pipeline, settings, tasks=tasks, workers=workers, overwrite=overwrite,
                   executor=executor), output_path)

"""Runs a pipeline of prox steps over the shards of an input that are not done yet."""

from __future__ import annotations

from collections.abc import Callable

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep

from prox.pipeline.reader import input_folder_and_files
from prox.pipeline.shards import LOGS_DIR, PROMPTS_DIR, OutputLayout
from prox.pipeline.stats import merge_summaries


class NoInputError(Exception):
    pass


def run_shards(
    input_path: str,
    output_path: str,
    build_pipeline: Callable[[list[str]], list[PipelineStep]],
    settings: dict,
    tasks: int = 1,
    workers: int = 1,
    job: str = "documents",
) -> dict:
    """Plans the pending shards, runs `build_pipeline(pending)` on them, writes the run's statistics
    (OUT/stats.json; OUT/prompts/stats.json for the "prompts" job of a dry run).

    Returns the statistics, with `ran_shards`: how many shards this call processed.
    """
    _, shards = input_folder_and_files(input_path)
    if not shards:
        raise NoInputError(f"no input files (.parquet, .jsonl, .jsonl.gz, .json.gz) under {input_path}")
    layout = OutputLayout(output_path, job)
    pending = [shard for shard in shards if not layout.is_done(shard)]
    if pending:
        layout.write_json(f"{LOGS_DIR}/{'settings' if job == 'documents' else job + '-settings'}.json", settings)
        tasks = max(1, min(tasks, len(pending)))
        executor = LocalPipelineExecutor(
            pipeline=build_pipeline(pending),
            tasks=tasks,
            workers=max(1, min(workers, tasks)),
            logging_dir=layout.folder.resolve_paths(f"{LOGS_DIR}/datatrove"),
            skip_completed=False,  # shards, not tasks, are the unit of resume
        )
        executor.run()
    stats = merge_summaries(layout, shards, job) | {"settings": settings, "ran_shards": len(pending)}
    layout.write_json("stats.json" if job == "documents" else f"{PROMPTS_DIR}/stats.json", stats)
    return stats

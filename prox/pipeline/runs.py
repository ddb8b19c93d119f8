"""Runs a pipeline of prox steps over the shards of an input that are not done yet."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

from datatrove.io import get_datafolder
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.pipeline.executors import ExecutorSettings
from prox.pipeline.input_files import list_input
from prox.pipeline.output_names import renamed_note
from prox.pipeline.progress import count_rows, live_progress, shows_live_progress
from prox.pipeline.run_guard import check_settings, clear_output, output_lock
from prox.pipeline.shards import LOGS_DIR, PROMPTS_DIR, OutputLayout
from prox.pipeline.slurm_jobs import record_submission, refuse_while_running, wait_for_job
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
    devices: list[str] | None = None,
    overwrite: bool = False,
    executor: ExecutorSettings | None = None,
    around: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> dict:
    """Plans the pending shards, runs `build_pipeline(pending)` on them, writes the run's statistics
    (OUT/stats.json; OUT/prompts/stats.json for the "prompts" job of a dry run).

    `devices`: with more than one, one process per entry (a CUDA_VISIBLE_DEVICES value, e.g. "0" or
    "2,3") runs its share of the tasks one after the other: data parallel over GPUs.
    `executor`: where the tasks run (default: here). A Slurm run is submitted, and the statistics
    are those at submission (`submitted`: the job id), unless it waits for the job array to end.
    While a job array submitted on the output is queued or running, another run is refused
    (SlurmJobRunningError).
    `around`: what the tasks need while they run (prox's vLLM servers), entered only when there is
    work, before the pipeline is built, and left when the tasks end.
    The run holds the output's lock throughout; settings that differ from the output's are refused
    (SettingsChangedError) unless `overwrite`, which deletes the job's earlier results first.
    Every shard is given its output names (output_names) before anything runs.

    Returns the statistics, with `ran_shards`: how many shards this call processed.
    """
    listing = list_input(input_path)
    shards = listing.files
    for note in listing.notes:
        logger.warning(f"input: {note}")
    if not shards:
        raise NoInputError(f"no input files (.parquet, .jsonl, .jsonl.gz, .json.gz) under {input_path}")
    layout = OutputLayout(output_path, job)
    settings_name = layout.job_file("settings.json")
    with output_lock(layout, output_path):
        refuse_while_running(layout, output_path)
        if overwrite:
            clear_output(layout)
        check_settings(layout, settings_name, settings, output_path)
        renamed = layout.record_names(shards)
        for shard, name in renamed.items():
            logger.warning(f"output: {renamed_note(shard, name)}")
        pending = [shard for shard in shards if not layout.is_done(shard)]
        if pending:
            layout.write_json(settings_name, settings)
            devices = devices or []
            tasks = max(1, min(max(tasks, len(devices), workers), len(pending)))
            executor = executor or ExecutorSettings()
            logging_dir = get_datafolder(executor.logging_dir or (layout.folder.resolve_paths(f"{LOGS_DIR}/datatrove"),
                                                                  layout.folder.fs))
            live = shows_live_progress(executor.kind, min(workers, tasks), len(devices))
            expected = functools.partial(_expected, listing.folder, pending, settings.get("limit", -1), tasks)
            with around() if around else contextlib.nullcontext(), (
                    live_progress(expected) if live else contextlib.nullcontext()):
                submitted = executor.run(build_pipeline(pending), tasks, workers, logging_dir, devices)
            if submitted:
                record_submission(layout, submitted, len(pending))
                if executor.slurm_wait:
                    wait_for_job(layout, submitted, pending, logging_dir.resolve_paths("slurm_logs"))
                    submitted = None
        notes = {"input_notes": listing.notes, "output_names": renamed}
        return _write_stats(layout, shards, job, {"settings": settings} | notes, len(pending)) | (
            {"submitted": submitted} if pending and submitted else {})


def _expected(folder, pending: list[str], limit: int, tasks: int) -> int | None:
    """The documents this run reads: the pending shards' rows, at most `limit` per task."""
    total = count_rows(folder, pending)
    return total if total is None or limit < 0 else min(total, limit * tasks)


def _write_stats(layout: OutputLayout, shards: list[str], job: str, extra: dict, ran: int) -> dict:
    stats = merge_summaries(layout, shards, job) | extra | {"ran_shards": ran}
    layout.write_json(f"{PROMPTS_DIR}/stats.json" if job == "prompts" else "stats.json", stats)
    return stats

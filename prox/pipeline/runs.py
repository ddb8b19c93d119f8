"""Runs a pipeline of prox steps over the shards of an input that are not done yet."""

from __future__ import annotations

import os
from collections.abc import Callable

import multiprocess
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.pipeline.reader import input_folder_and_files
from prox.pipeline.run_guard import check_settings, clear_output, output_lock
from prox.pipeline.shards import LOGS_DIR, PROMPTS_DIR, OutputLayout
from prox.pipeline.stats import merge_summaries


class NoInputError(Exception):
    pass


def executor(pipeline: list[PipelineStep], tasks: int, workers: int, logging_dir: str, local_tasks: int = -1,
             local_rank_offset: int = 0) -> LocalPipelineExecutor:
    return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                 local_tasks=local_tasks, local_rank_offset=local_rank_offset,
                                 skip_completed=False)  # shards, not tasks, are the unit of resume


def run_on_devices(pipeline: list[PipelineStep], tasks: int, logging_dir: str, devices: list[str]) -> None:
    """One process per device, each seeing only its own GPUs and running a contiguous share of the
    tasks. Processes are spawned, not forked nor pooled: CUDA needs a fresh process, and vLLM starts
    processes of its own, which a pool's daemon workers may not."""
    context = multiprocess.get_context("spawn")
    shares = [len(range(i, tasks, len(devices))) for i in range(len(devices))]
    processes, offset = [], 0
    for device, share in zip(devices, shares, strict=True):
        if share:
            processes.append(context.Process(target=_run_share, args=(device, pipeline, tasks, share, offset,
                                                                      logging_dir), name=f"prox-gpu-{device}"))
            offset += share
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        if process.exitcode:
            logger.error(f"the process on CUDA device(s) {process.name[9:]} exited with {process.exitcode}")


def _run_share(device: str, pipeline: list[PipelineStep], tasks: int, share: int, offset: int,
               logging_dir: str) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = device  # before anything in this process touches CUDA
    executor(pipeline, tasks, 1, logging_dir, local_tasks=share, local_rank_offset=offset).run()


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
) -> dict:
    """Plans the pending shards, runs `build_pipeline(pending)` on them, writes the run's statistics
    (OUT/stats.json; OUT/prompts/stats.json for the "prompts" job of a dry run).

    `devices`: with more than one, one process per entry (a CUDA_VISIBLE_DEVICES value, e.g. "0" or
    "2,3") runs its share of the tasks one after the other: data parallel over GPUs.
    The run holds the output's lock throughout; settings that differ from the output's are refused
    (SettingsChangedError) unless `overwrite`, which deletes the job's earlier results first.

    Returns the statistics, with `ran_shards`: how many shards this call processed.
    """
    _, shards = input_folder_and_files(input_path)
    if not shards:
        raise NoInputError(f"no input files (.parquet, .jsonl, .jsonl.gz, .json.gz) under {input_path}")
    layout = OutputLayout(output_path, job)
    settings_name = f"{LOGS_DIR}/{'settings' if job == 'documents' else job + '-settings'}.json"
    with output_lock(layout, output_path):
        if overwrite:
            clear_output(layout, job)
        check_settings(layout, settings_name, settings, output_path)
        pending = [shard for shard in shards if not layout.is_done(shard)]
        if pending:
            layout.write_json(settings_name, settings)
            devices = devices or []
            tasks = max(1, min(max(tasks, len(devices)), len(pending)))
            logging_dir = layout.folder.resolve_paths(f"{LOGS_DIR}/datatrove")
            if len(devices) > 1:
                run_on_devices(build_pipeline(pending), tasks, logging_dir, devices)
            else:
                executor(build_pipeline(pending), tasks, max(1, min(workers, tasks)), logging_dir).run()
        return _write_stats(layout, shards, job, settings, len(pending))


def _write_stats(layout: OutputLayout, shards: list[str], job: str, settings: dict, ran: int) -> dict:
    stats = merge_summaries(layout, shards, job) | {"settings": settings, "ran_shards": ran}
    layout.write_json("stats.json" if job == "documents" else f"{PROMPTS_DIR}/stats.json", stats)
    return stats

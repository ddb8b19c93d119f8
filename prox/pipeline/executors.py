"""Where a run's tasks execute: this machine, a Slurm cluster or a Ray cluster (datatrove's executors).

The tasks and the output are the same everywhere: each task reads the shards `files[rank::tasks]`
and marks each one done, so resume works whatever ran the earlier attempt. On Slurm and Ray each
task asks for its own GPUs (`gpus_per_task`). Slurm runs are submitted and the command returns
(or waits for the job array, with `slurm_wait`); Ray and local runs return when the work is done.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

import multiprocess
from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor
from datatrove.io import DataFolder
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from prox.pipeline.slurm_jobs import submit

EXECUTORS = ("local", "slurm", "ray")


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str = "local"
    slurm_partition: str | None = None
    slurm_time: str = "24:00:00"
    slurm_array_parallel: int | None = None  # array tasks running at once
    job_name: str = "prox"
    cpus_per_task: int = 1
    mem_per_cpu_gb: float = 2
    gpus_per_task: int | None = None  # None: 0
    ray_address: str | None = None
    logging_dir: str | None = None  # datatrove's task logs and Slurm's logs [default: OUT/logs/datatrove]
    slurm_wait: bool = False  # after submitting, wait until the job array ends

    def run(self, pipeline: list[PipelineStep], tasks: int, workers: int, logging_dir: DataFolder,
            devices: list[str]) -> str | None:
        """Runs (or submits) the tasks; returns the Slurm job id of a submission."""
        if self.kind == "slurm":
            executor = self._slurm(pipeline, tasks, logging_dir)
            submit(executor, logging_dir.resolve_paths("launch_script.slurm"))
            return str(executor.job_id)
        if self.kind == "ray":
            self._ray(pipeline, tasks, workers, logging_dir).run()
        elif len(devices) > 1:
            run_on_devices(pipeline, tasks, logging_dir, devices)
        else:
            workers = max(1, min(workers, tasks))
            if workers > 1:  # the processes use the cores: the tokenizer's own threads would only add CPU
                os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            local_executor(pipeline, tasks, workers, logging_dir).run()
        return None

    def _slurm(self, pipeline: list[PipelineStep], tasks: int, logging_dir: DataFolder) -> PipelineExecutor:
        if not self.slurm_partition:
            raise ValueError("--executor slurm needs --slurm-partition")
        in_venv = sys.prefix != sys.base_prefix
        return ArrayOnlySlurmExecutor(
            pipeline=pipeline, tasks=tasks, time=self.slurm_time, partition=self.slurm_partition,
            cpus_per_task=self.cpus_per_task, mem_per_cpu_gb=self.mem_per_cpu_gb, gpus_per_task=self.gpus_per_task or 0,
            # datatrove writes "--mem-per-cpu=2.0G" for a float, which sbatch refuses: whole megabytes instead
            sbatch_args={"mem-per-cpu": f"{math.ceil(self.mem_per_cpu_gb * 1024)}M"},
            workers=self.slurm_array_parallel or -1, job_name=self.job_name, logging_dir=logging_dir,
            venv_path=os.path.join(sys.prefix, "bin", "activate") if in_venv else None,
            skip_completed=False,  # shards, not tasks, are the unit of resume
            qos="",  # the cluster's default
        )

    def _ray(self, pipeline: list[PipelineStep], tasks: int, workers: int, logging_dir: DataFolder):
        import ray
        from datatrove.executor import RayPipelineExecutor

        if not ray.is_initialized():
            ray.init(address=self.ray_address, log_to_driver=False)
        return RayPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers if workers > 1 else -1,
                                   logging_dir=logging_dir, cpus_per_task=self.cpus_per_task,
                                   mem_per_cpu_gb=self.mem_per_cpu_gb, gpus_per_task=self.gpus_per_task or 0,
                                   skip_completed=False)


class ArrayOnlySlurmExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor without the job it queues after the array to merge datatrove's own
    statistics: prox writes its statistics itself, and that job waits `afterok` on the array, so on
    most clusters one failed task would leave it pending for ever."""

    def launch_merge_stats(self) -> None:
        pass


def local_executor(pipeline: list[PipelineStep], tasks: int, workers: int, logging_dir: DataFolder,
                   local_tasks: int = -1, local_rank_offset: int = 0) -> LocalPipelineExecutor:
    return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers, logging_dir=logging_dir,
                                 local_tasks=local_tasks, local_rank_offset=local_rank_offset,
                                 skip_completed=False)  # shards, not tasks, are the unit of resume


def run_on_devices(pipeline: list[PipelineStep], tasks: int, logging_dir: DataFolder, devices: list[str]) -> None:
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
               logging_dir: DataFolder) -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = device  # before anything in this process touches CUDA
    local_executor(pipeline, tasks, 1, logging_dir, local_tasks=share, local_rank_offset=offset).run()

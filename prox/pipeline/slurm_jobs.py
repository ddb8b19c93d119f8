"""The Slurm job array a run submitted, recorded in the output folder.

A submission returns while its array tasks are still queued. The output's run lock is released
then, so the record is what keeps a second run (cron's next one, a user's rerun) from planning
the same pending shards and writing them twice: while Slurm still lists the job, another run on
the folder is refused. `--wait` follows the job to its end through the same record.
"""

from __future__ import annotations

import subprocess
import sys
import time

from datatrove.utils.logging import logger
from tqdm import tqdm

from prox.pipeline.run_guard import OutputBusyError
from prox.pipeline.shards import OutputLayout

POLL_SECONDS = (1.0, 15.0)  # the first wait between checks, and the longest
# squeue retries for a minute when its configuration file is missing, and a controller that is down
# keeps it waiting too: past this, the job's state counts as unknown
SQUEUE_TIMEOUT_SECONDS = 20
UNANSWERED_SECONDS = 600  # --wait gives up after Slurm has not answered for this long


class SlurmJobRunningError(OutputBusyError):
    """A job array submitted on this output is still queued or running."""


class SlurmError(Exception):
    """sbatch is missing here or refused the job array, or squeue stopped answering."""


def submit(executor, script: str) -> None:
    """Submits datatrove's Slurm executor (it calls sbatch, whose own message reaches stderr)."""
    try:
        executor.run()
    except FileNotFoundError as error:
        if error.filename != "sbatch":  # the launch script's folder, say: not Slurm's matter
            raise
        raise SlurmError("sbatch not found: --executor slurm submits from a machine of the Slurm cluster "
                         "(a login node)") from error
    except subprocess.CalledProcessError as error:
        raise SlurmError(f"sbatch refused the job array (exit status {error.returncode}; its message is "
                         f"above). The job script: {script}") from error


RECORD = "slurm-job.json"  # the job's own, under logs/


def record_submission(layout: OutputLayout, job_id: str, shards: int) -> None:
    layout.write_json(layout.job_file(RECORD), {"job_id": job_id, "shards": shards,
                                         "submitted": time.strftime("%Y-%m-%d %H:%M:%S")})


def job_states(job_id: str) -> list[str] | None:
    """The states (PENDING, RUNNING, ...) of the job's array tasks that Slurm still lists as queued or
    running: empty once the job has ended. None when Slurm cannot be asked here."""
    try:
        listed = subprocess.run(["squeue", "--noheader", "--jobs", job_id, "--format", "%T"],
                                capture_output=True, text=True, timeout=SQUEUE_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.warning(f"cannot ask Slurm about job {job_id}: {error}")
        return None
    if listed.returncode != 0:
        if "invalid job id" in listed.stderr.lower():  # ended long enough ago to be forgotten
            return []
        logger.warning(f"cannot ask Slurm about job {job_id}: {listed.stderr.strip()}")
        return None
    return listed.stdout.split()


def _counts(states: list[str]) -> str:
    """["PENDING", "RUNNING", "RUNNING"] -> "1 pending, 2 running" (a pending rest of an array is one line)."""
    return ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states)))


def last_job(layout: OutputLayout) -> tuple[dict, list[str] | None] | None:
    """The output's last Slurm submission and its array tasks still queued or running, if it has one.
    Once seen ended, the record says so, and later runs and `prox stats` do not ask squeue again."""
    if not layout.folder.isfile(layout.job_file(RECORD)):
        return None
    record = layout.read_json(layout.job_file(RECORD))
    if record.get("ended"):
        return record, []
    states = job_states(record["job_id"])
    if states == []:
        layout.write_json(layout.job_file(RECORD), record | {"ended": True})
    return record, states


def describe_last_job(layout: OutputLayout) -> str | None:
    """A line on the output's last Slurm submission, for `prox stats`."""
    if (found := last_job(layout)) is None:
        return None
    record, states = found
    now = "state unknown (squeue failed)" if states is None else _counts(states) if states else "ended"
    return f"slurm job {record['job_id']} (submitted {record['submitted']}, {record['shards']} shards): {now}"


def refuse_while_running(layout: OutputLayout, output_path: str) -> None:
    """Raises SlurmJobRunningError while the output's last Slurm submission is queued or running."""
    if (found := last_job(layout)) is None:
        return
    record, states = found
    if states is None:
        logger.warning(f"{output_path}: could not check that Slurm job {record['job_id']}, submitted "
                       f"{record['submitted']}, has ended; going on as if it had")
    elif states:
        raise SlurmJobRunningError(
            f"Slurm job {record['job_id']} (submitted {record['submitted']}) is still working on {output_path} "
            f"({_counts(states)}). Wait for it (`squeue -j {record['job_id']}`; `prox stats {output_path} "
            f"--input INPUT --shards` shows its shards), or cancel it (`scancel {record['job_id']}`), then run again.")


def wait_for_job(layout: OutputLayout, job_id: str, pending: list[str], slurm_logs: str) -> None:
    """Returns when Slurm no longer lists the job, showing how many of its shards are done meanwhile:
    a line that updates on a terminal, a log line per change otherwise."""
    live = sys.stderr.isatty()
    bar = tqdm(total=len(pending), desc=f"slurm job {job_id}", unit="shard", disable=not live, dynamic_ncols=True)
    remaining, pause, answered = list(pending), POLL_SECONDS[0], time.monotonic()
    try:
        while True:
            states = job_states(job_id)
            if states is not None:
                answered = time.monotonic()
            elif time.monotonic() - answered > UNANSWERED_SECONDS:
                raise SlurmError(f"stopped waiting: squeue has not answered for {UNANSWERED_SECONDS // 60} "
                                 f"minutes. Slurm job {job_id} may still run; rerun the command once it "
                                 "has ended")
            still = [shard for shard in remaining if not layout.is_done(shard)]  # a done shard stays done
            if len(still) != len(remaining):
                bar.update(len(remaining) - len(still))
                if not live:
                    logger.info(f"slurm job {job_id}: {len(pending) - len(still)}/{len(pending)} shards done")
                remaining = still
            if states == []:
                if unfinished := [s for s in remaining if not layout.folder.isfile(layout.failure_name(s))]:
                    logger.warning(f"slurm job {job_id} ended with {len(unfinished)} shards not done and no error "
                                   f"recorded (a task killed or failed: its log is in {slurm_logs})")
                return
            time.sleep(pause)
            pause = min(pause * 1.5, POLL_SECONDS[1])
    except KeyboardInterrupt:
        logger.warning(f"stopped waiting: Slurm job {job_id} goes on (`scancel {job_id}` stops it)")
        raise
    finally:
        bar.close()

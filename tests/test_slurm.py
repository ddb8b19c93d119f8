"""prox on a real one-node Slurm cluster started here (Debian's slurmctld, slurmd and munge): job
arrays submitted with sbatch and run by slurmd, followed with squeue, stopped with scancel; the real
CLI in subprocesses, the output checked with `prox verify` and against the local executor's."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import outcome, run_locally, run_prox, write_sample_shards
from slurm_cluster import SlurmCluster, missing_reason

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if reason := missing_reason():
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    os.environ["SLURM_CONF"] = str(cluster.conf)  # for prox's sbatch and squeue, and passed on to the jobs
    try:
        yield cluster
    finally:
        os.environ.pop("SLURM_CONF", None)
        cluster.stop()


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_sample_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def applied_locally(shards, tmp_path_factory) -> dict:
    return outcome(run_locally(shards, tmp_path_factory.mktemp("local") / "out", "apply"))


def on_slurm(command: str, shards: Path, out: Path, *extra: str, tasks: int = 4, check: bool = True):
    """`prox COMMAND --executor slurm`; when it fails unexpectedly, the test shows Slurm's logs too."""
    args = [command, "--input", str(shards), "--output", str(out), "--tasks", str(tasks), "--executor", "slurm",
            "--slurm-partition", SlurmCluster.partition, *extra]
    if command == "refine":
        args += ["--engine", "rules"]
    result = run_prox(*args, check=False)
    if check and result.returncode != 0:
        task_logs = "\n".join(p.read_text()[-1500:] for p in sorted(out.glob("logs/datatrove/slurm_logs/*")))
        pytest.fail(f"prox {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr[-3000:]}\n"
                    f"array tasks' logs:\n{task_logs}\nSlurm's logs:\n{cluster_logs()}")
    return result


def cluster_logs() -> str:
    conf = Path(os.environ.get("SLURM_CONF", "/nonexistent"))
    return "\n".join(p.read_text(errors="replace")[-2000:] for p in sorted(conf.parent.glob("log/*")))


def job_id(submitted) -> str:
    return re.search(r"submitted Slurm job (\d+)", submitted.stdout).group(1)


def final_stats(out: Path) -> dict:
    stats = json.loads((out / "stats.json").read_text())
    assert "submitted" not in stats
    return stats


def test_refine_array_runs_on_slurm_and_a_rerun_finds_nothing_to_do(cluster, shards, tmp_path):
    """Two array tasks of two shards each (a refine task loads the tokenizer: seconds on a loaded CPU)."""
    out = tmp_path / "out"
    submitted = on_slurm("refine", shards, out, tasks=2)
    job = job_id(submitted)
    assert "4 shards to do" in submitted.stdout
    cluster.wait_for(job)
    again = on_slurm("refine", shards, out, tasks=2)
    assert "nothing to do" in again.stdout and "shards: 4/4 done, 0 failed, 0 pending" in again.stdout
    assert final_stats(out)["ran_shards"] == 0
    assert "OK" in run_prox("verify", str(shards), str(out)).stdout
    assert outcome(out) == outcome(run_locally(shards, tmp_path / "local", "refine", "--engine", "rules"))
    assert sorted(p.name for p in (out / "logs/datatrove/slurm_logs").iterdir()) == [f"{job}_{t}.out" for t in range(2)]


def test_apply_waits_for_its_array_and_prints_the_final_summary(cluster, shards, tmp_path, applied_locally):
    out = tmp_path / "out"
    result = on_slurm("apply", shards, out, "--wait")
    assert "shards: 4/4 done, 0 failed, 0 pending" in result.stdout
    assert final_stats(out)["ran_shards"] == 4
    assert not cluster.run("squeue", "-h").stdout.strip()  # nothing left queued: no stats-merging job either
    assert "nothing to do" in on_slurm("apply", shards, out, "--wait").stdout
    assert "OK" in run_prox("verify", str(shards), str(out)).stdout
    assert outcome(out) == applied_locally


def test_a_failed_shard_is_reported_and_a_rerun_after_the_fix_does_it_alone(cluster, shards, tmp_path,
                                                                           applied_locally):
    folder = tmp_path / "in"
    shutil.copytree(shards, folder)
    whole = (folder / "shard-2.parquet").read_bytes()
    (folder / "shard-2.parquet").write_bytes(whole[: len(whole) // 2])  # cut off in the middle
    out = tmp_path / "out"
    failed = on_slurm("apply", folder, out, "--wait", check=False)
    assert failed.returncode == 1 and "FAILED shard-2.parquet" in failed.stderr
    lines = {line.split()[0]: line.split()[1] for line in run_prox("stats", str(out), "--shards").stdout.splitlines()
             if line.startswith("shard-")}
    assert lines == {"shard-0.parquet": "done", "shard-1.parquet": "done", "shard-2.parquet": "failed",
                     "shard-3.parquet": "done"}
    finished = {p: p.stat().st_mtime_ns for p in out.glob("*.parquet")}

    (folder / "shard-2.parquet").write_bytes(whole)  # the fix
    fixed = on_slurm("apply", folder, out, "--wait")
    assert "shards: 4/4 done, 0 failed, 0 pending" in fixed.stdout
    assert final_stats(out)["ran_shards"] == 1
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())  # not redone
    assert "OK" in run_prox("verify", str(folder), str(out)).stdout
    assert outcome(out) == applied_locally


def test_a_cancelled_array_is_finished_by_a_rerun_as_if_never_interrupted(cluster, shards, tmp_path, applied_locally):
    cpus = str(os.cpu_count())
    blocker = cluster.run("sbatch", "--parsable", f"--cpus-per-task={cpus}", f"--output={tmp_path}/blocker.out",
                          "--wrap", "sleep 600").stdout.strip()
    out = tmp_path / "out"
    job = job_id(on_slurm("apply", shards, out, "--slurm-array-parallel", "1"))
    assert cluster.job_states(job) == ["PENDING"]  # held back by the blocker, which holds every CPU

    busy = on_slurm("apply", shards, out, check=False)  # cron's next run, while the array is queued
    assert busy.returncode == 75, busy.stderr[-2000:]
    assert f"Slurm job {job}" in busy.stderr and "still working" in busy.stderr and f"scancel {job}" in busy.stderr
    listed = run_prox("stats", str(out), "--input", str(shards), "--shards").stdout
    assert "shards: 0/4 done, 0 failed, 4 pending" in listed and f"slurm job {job}" in listed and "pending" in listed

    cluster.run("scancel", blocker)
    cluster.wait_for(job, until=lambda states: "RUNNING" in states)
    cluster.run("scancel", job)
    cluster.wait_for(job)
    assert len(list((out / "logs/shards").glob("*.json"))) < 4  # the cancel left work undone

    rerun = on_slurm("apply", shards, out, "--wait")
    assert "shards: 4/4 done, 0 failed, 0 pending" in rerun.stdout
    assert final_stats(out)["ran_shards"] >= 3
    assert "OK" in run_prox("verify", str(shards), str(out)).stdout
    assert outcome(out) == applied_locally
    assert not list((out / "logs/partial").rglob("*.parquet"))



def test_a_submission_sbatch_refuses_is_one_clear_message(cluster, shards, tmp_path):
    refused = on_slurm("apply", shards, tmp_path / "out", "--mem-per-cpu-gb", "100000", check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "sbatch: error: Memory specification can not be satisfied" in refused.stderr
    assert "Error: sbatch refused the job array (exit status 1; its message is above)" in refused.stderr

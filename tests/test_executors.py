"""The same run on other executors: a real local Ray runtime, and Slurm's job array. Plus incremental
reruns as cron makes them. The real CLI in subprocesses, checked with `prox verify`."""

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES, read_output, run_prox

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    """The bundled documents with their stored programs, in four parquet shards."""
    folder = tmp_path_factory.mktemp("shards")
    rows = [orjson.loads(line) for line in SAMPLES.read_bytes().splitlines()]
    for index in range(4):
        pq.write_table(pa.Table.from_pylist(rows[index::4]), folder / f"shard-{index}.parquet")
    return folder


def outcome(out: Path) -> dict:
    kept, dropped = read_output(out)
    return {row["id"]: (row["text"], row["metadata"]["prox_action"], row["metadata"]["prox_reason"],
                        row["metadata"].get("chunk_program")) for row in kept + dropped}


def local(shards: Path, out: Path, *args: str) -> Path:
    run_prox(*args, "--input", str(shards), "--output", str(out), "--tasks", "4")
    return out


@pytest.fixture(scope="module")
def ray_address():
    """A one-node Ray cluster started here with the CPUs this machine has."""
    pytest.importorskip("ray")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--port", str(port), "--node-ip-address",
                            "127.0.0.1", f"--num-cpus={os.cpu_count()}", "--include-dashboard=false",
                            "--disable-usage-stats"], capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-3000:]
    yield f"127.0.0.1:{port}"
    subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=120)


@pytest.mark.parametrize("command", [("refine", "--engine", "rules", "--keep-raw")])  # apply runs the same way
def test_ray_gives_the_local_output(command, shards, ray_address, tmp_path):
    expected = local(shards, tmp_path / "local", *command)
    out = tmp_path / "ray"
    run_prox(*command, "--input", str(shards), "--output", str(out), "--tasks", "4", "--executor", "ray",
             "--ray-address", ray_address)
    assert outcome(out) == outcome(expected)
    assert "OK" in run_prox("verify", str(shards), str(out)).stdout
    assert "nothing to do" in run_prox(*command, "--input", str(shards), "--output", str(out), "--tasks", "4",
                                       "--executor", "ray", "--ray-address", ray_address).stdout


def test_slurm_job_array_is_submitted_and_its_tasks_give_the_local_output(shards, tmp_path):
    """No Slurm here (a one-node cluster from Debian's packages needs slurmctld, slurmd and munge
    daemons; not attempted in CI): `sbatch` is a script that keeps what it is given, and the test
    runs each array task as Slurm would (SLURM_ARRAY_TASK_ID set, datatrove's launcher on the
    pickled job)."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "sbatch").write_text(f"#!{sys.executable}\nimport pathlib, sys\n"
                                     f"jobs = pathlib.Path({str(tmp_path)!r})\n"
                                     "script = pathlib.Path(sys.argv[-1]).read_text()\n"
                                     "(jobs / f'job-{len(list(jobs.glob(\"job-*.sh\")))}.sh').write_text(script)\n"
                                     "print('Submitted batch job 4242')\n")
    (fake_bin / "scontrol").write_text('#!/bin/sh\necho "$3"\n')  # `scontrol show hostnames NODELIST`
    for tool in ("sbatch", "scontrol"):
        (fake_bin / tool).chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    args = [sys.executable, "-m", "prox", "refine", "--engine", "rules", "--input", str(shards), "--output", str(out),
            "--tasks", "4", "--executor", "slurm", "--slurm-partition", "cpu", "--slurm-time", "02:00:00",
            "--slurm-array-parallel", "2", "--job-name", "prox-test", "--cpus-per-task", "2", "--gpus-per-task", "1",
            "--logging-dir", str(tmp_path / "slurm")]
    submitted = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "submitted Slurm job 4242" in submitted.stdout
    script = (tmp_path / "job-0.sh").read_text()
    for directive in ("--partition=cpu", "--time=02:00:00", "--array=0-3%2", "--job-name=prox-test",
                      "--cpus-per-task=2", "--gpus=1", f"--output={tmp_path}/slurm/slurm_logs/%A_%a.out"):
        assert f"#SBATCH {directive}" in script
    assert f"source {sys.prefix}/bin/activate" in script
    pickled = re.search(r"launch_pickled_pipeline (\S+)", script).group(1)

    for task in range(4):  # what the cluster does with the array
        env = {**env, "SLURM_ARRAY_TASK_ID": str(task), "SLURM_JOB_ID": "4242", "SLURM_NODELIST": "localhost"}
        ran = subprocess.run([str(BIN / "launch_pickled_pipeline"), pickled], capture_output=True, text=True,
                             env=env, timeout=300)
        assert ran.returncode == 0, ran.stderr[-3000:]
    expected = local(shards, tmp_path / "local", "refine", "--engine", "rules")
    assert outcome(out) == outcome(expected)
    assert "4 pending" in run_prox("stats", str(out)).stdout  # stats.json as at submission
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)  # the same command again:
    assert again.returncode == 0 and "nothing to do" in again.stdout  # nothing submitted, final stats written
    assert len(list(tmp_path.glob("job-*.sh"))) == 2  # the job array and datatrove's stats merge, once
    assert "OK" in run_prox("verify", str(shards), str(out)).stdout


def test_new_shards_alone_are_processed_on_rerun(shards, tmp_path):
    """Cron: shards arrive between runs; finished ones are never redone nor duplicated."""
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for name in ("shard-0.parquet", "shard-1.parquet"):
        shutil.copy(shards / name, incoming / name)
    out = tmp_path / "out"
    run_prox("apply", "--input", str(incoming), "--output", str(out), "--tasks", "2")
    first = {p: p.stat().st_mtime_ns for p in out.glob("*.parquet")}
    for name in ("shard-2.parquet", "shard-3.parquet"):
        shutil.copy(shards / name, incoming / name)
    again = run_prox("apply", "--input", str(incoming), "--output", str(out), "--tasks", "3")
    stats = orjson.loads((out / "stats.json").read_bytes())
    assert stats["ran_shards"] == 2 and stats["shards"]["done"] == 4 and "4/4 done" in again.stdout
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in first.items())
    assert "OK" in run_prox("verify", str(incoming), str(out)).stdout
    assert outcome(out) == outcome(local(shards, tmp_path / "all-at-once", "apply"))

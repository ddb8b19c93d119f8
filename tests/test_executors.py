"""The same run on other executors: a real local Ray runtime, and Slurm's job array. Plus incremental
reruns as cron makes them. The real CLI in subprocesses, checked with `prox verify`."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from conftest import free_port, outcome, run_locally, run_prox, write_sample_shards

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_sample_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def ray_address():
    """A one-node Ray cluster started here with the CPUs this machine has."""
    pytest.importorskip("ray")
    port = free_port()
    start = subprocess.run([str(BIN / "ray"), "start", "--head", "--port", str(port), "--node-ip-address",
                            "127.0.0.1", f"--num-cpus={os.cpu_count()}", "--include-dashboard=false",
                            "--disable-usage-stats"], capture_output=True, text=True, timeout=180)
    assert start.returncode == 0, start.stderr[-3000:]
    yield f"127.0.0.1:{port}"
    subprocess.run([str(BIN / "ray"), "stop", "--force"], capture_output=True, timeout=120)


@pytest.mark.parametrize("command", [("refine", "--engine", "rules", "--keep-raw")])  # apply runs the same way
def test_ray_gives_the_local_output(command, shards, ray_address, tmp_path):
    expected = run_locally(shards, tmp_path / "local", *command)
    out = tmp_path / "ray"
    run_prox(*command, "--input", str(shards), "--output", str(out), "--tasks", "4", "--executor", "ray",
             "--ray-address", ray_address)
    assert outcome(out) == outcome(expected)
    assert "OK" in run_prox("verify", str(shards), str(out)).stdout
    assert "nothing to do" in run_prox(*command, "--input", str(shards), "--output", str(out), "--tasks", "4",
                                       "--executor", "ray", "--ray-address", ray_address).stdout


def test_slurm_job_array_asks_for_what_the_options_say(shards, tmp_path):
    """What the real cluster of test_slurm.py cannot show, having no GPU: the directives of the job
    script, GPUs included. `sbatch` here is a script that keeps what it is given."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "sbatch").write_text(f"#!{sys.executable}\nimport pathlib, sys\n"
                                     f"jobs = pathlib.Path({str(tmp_path)!r})\n"
                                     "script = pathlib.Path(sys.argv[-1]).read_text()\n"
                                     "(jobs / f'job-{len(list(jobs.glob(\"job-*.sh\")))}.sh').write_text(script)\n"
                                     "print('Submitted batch job 4242')\n")
    (fake_bin / "sbatch").chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    args = [sys.executable, "-m", "prox", "refine", "--engine", "rules", "--input", str(shards), "--output", str(out),
            "--tasks", "4", "--executor", "slurm", "--slurm-partition", "gpu", "--slurm-time", "02:00:00",
            "--slurm-array-parallel", "2", "--job-name", "prox-test", "--cpus-per-task", "2", "--gpus-per-task", "1",
            "--logging-dir", str(tmp_path / "slurm")]
    submitted = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "submitted Slurm job 4242" in submitted.stdout
    script = (tmp_path / "job-0.sh").read_text()
    for directive in ("--partition=gpu", "--time=02:00:00", "--array=0-3%2", "--job-name=prox-test",
                      "--cpus-per-task=2", "--gpus=1", f"--output={tmp_path}/slurm/slurm_logs/%A_%a.out"):
        assert f"#SBATCH {directive}" in script
    assert f"source {sys.prefix}/bin/activate" in script
    assert re.search(r"launch_pickled_pipeline \S+", script)
    assert [p.name for p in tmp_path.glob("job-*.sh")] == ["job-0.sh"]  # the array alone: no stats-merging job
    assert "--mem-per-cpu=2048M" in script  # whole megabytes: sbatch refuses "2.0G"

    (fake_bin / "sbatch").unlink()
    missing = subprocess.run([*args[:-2], "--logging-dir", str(tmp_path / "other")], capture_output=True, text=True,
                             env={**env, "PATH": str(fake_bin)}, timeout=300)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "sbatch not found: --executor slurm submits from a machine of the Slurm cluster" in missing.stderr


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
    assert outcome(out) == outcome(run_locally(shards, tmp_path / "all-at-once", "apply"))

"""`--workers` with the vLLM engine, on vLLM's CPU build: prox starts vLLM's OpenAI server for the worker
processes and stops it with the run, even when the run is killed.
"""

import contextlib
import glob
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import TRANSFORMERS, VLLM, needs_vllm, refine_args, refined_outputs, run_prox

pytestmark = [pytest.mark.slow, needs_vllm]


def test_workers_share_prox_s_vllm_server_and_a_killed_run_resumes_to_the_same_output(vllm_documents, vllm_model,
                                                                                       tmp_path):
    """`--workers 2`: prox starts vLLM's server and two worker processes send it their requests.
    Killed (SIGKILL, prox's whole process group) during generation, the run leaves no server behind;
    rerun, it writes what one uninterrupted process writes (the transformers engine here:
    test_vllm_engine.py shows that vLLM's own engine writes the same)."""
    out = tmp_path / "out"
    args = refine_args(vllm_documents, out, vllm_model, *VLLM, "--workers", "2")
    process = subprocess.Popen([sys.executable, "-m", "prox", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while not list((out / "logs" / "shards").glob("*.json")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # prox and its workers; the server has a session of its own
    process.wait()
    assert 1 <= len(list((out / "logs" / "shards").glob("*.json"))) < 3, "the kill should land mid-run"
    server_log = out / "logs" / "vllm-server-0-0.log"
    while holders_of(server_log) and time.time() < deadline:  # the kernel stops it as prox dies
        time.sleep(0.5)
    assert not holders_of(server_log)

    rerun = run_prox(*args)
    assert "nothing to do" not in rerun.stdout and not holders_of(server_log)
    run_prox(*refine_args(vllm_documents, tmp_path / "uninterrupted", vllm_model, *TRANSFORMERS))
    assert refined_outputs(out) == refined_outputs(tmp_path / "uninterrupted")
    assert "OK" in run_prox("verify", str(vllm_documents[0]), str(out)).stdout
    assert "POST /v1/completions" in server_log.read_text()


def holders_of(path) -> list[int]:
    """The processes that have `path` open (a server and its engine log to it)."""
    holders = []
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        with contextlib.suppress(OSError):
            if any(os.readlink(os.path.join(fd_dir, fd)) == str(path) for fd in os.listdir(fd_dir)):
                holders.append(int(fd_dir.split("/")[2]))
    return holders

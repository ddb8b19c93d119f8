"""vLLM's OpenAI-compatible server, started and stopped by prox: the engine of a run whose CPU work
is spread over several worker processes.

One process per GPU cannot keep the GPU busy: reading, prompt building, execution and writing take
about as long as generation. So with `--workers W`, prox starts one vLLM server per GPU (per model
when the two stages name different models) on localhost, and the W workers are its clients (the
openai engine, hundreds of requests in flight each). vLLM's server batches whatever is in flight
from all of them, so the GPU never waits for one worker's batch to drain. The servers live as long
as the run: they start when there is work, and stop (their whole process group) when it ends or
fails. Their logs are written where the run's logs are.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from prox.engines import vllm_plugin
from prox.engines.base import EngineError
from prox.engines.vllm_engine import GRAMMAR_BACKEND

_PR_SET_PDEATHSIG = 1
_TAKEN_PORTS: set[int] = set()  # given to this process's servers: a closed probe's port can come back
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost, never via http_proxy


class VLLMServer:
    """One `vllm.entrypoints.openai.api_server` on a free localhost port, started at once, waited for
    on use. `devices`: its CUDA_VISIBLE_DEVICES (None: as this process has it)."""

    def __init__(self, model: str, log: Path, args: list[str], devices: str | None = None):
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log, self.model = log, model
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
                   "--host", "127.0.0.1", "--port", str(port), *args]
        environment = os.environ | {vllm_plugin.SWITCH: vllm_plugin.wanted()} | (
            {"CUDA_VISIBLE_DEVICES": devices} if devices is not None else {})
        log.parent.mkdir(parents=True, exist_ok=True)
        parent = os.getpid()
        with open(log, "ab") as output:  # a rerun's server adds to the log of the run it resumes
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=environment,
                                            start_new_session=True, preexec_fn=lambda: _die_with_parent(parent))

    def wait_ready(self, seconds: float = 900) -> str:
        """The server's URL once `GET /v1/models` lists its model; EngineError, with its log's end, if
        it exits or does not answer in time."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"the vLLM server exited with status {self.process.returncode} while starting; "
                                  f"the end of its log ({self.log}):\n{self._log_tail()}")
            try:
                with _DIRECT.open(f"{self.url}/v1/models", timeout=5) as answer:
                    listed = answer.status == 200 and self.model in _model_ids(answer.read())
                if listed and self.process.poll() is None:
                    return self.url
            except OSError:
                pass
            time.sleep(1)
        raise EngineError(f"the vLLM server did not answer in {seconds:.0f} s; the end of its log ({self.log}):\n"
                          f"{self._log_tail()}")

    def stop(self) -> None:
        """Stops the server and what it started (its engine core), even if the server itself has
        already exited: SIGTERM to the whole group, then SIGKILL to what is left after 30 s."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        deadline = time.time() + 30
        while _group_alive(self.process.pid) and time.time() < deadline:
            time.sleep(0.5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"


def server_args(dtype: str | None = None, gpu_memory_utilization: float = 0.9, tensor_parallel_size: int = 1,
                max_model_len: int | None = None, enforce_eager: bool = False, seed: int = 0) -> list[str]:
    """The server's command-line options for the in-process vLLM engine's settings."""
    args = ["--dtype", dtype or "auto", "--gpu-memory-utilization", str(gpu_memory_utilization),
            "--tensor-parallel-size", str(tensor_parallel_size), "--seed", str(seed),
            "--structured-outputs-config", json.dumps(GRAMMAR_BACKEND)]
    if max_model_len:
        args += ["--max-model-len", str(max_model_len)]
    return args + (["--enforce-eager"] if enforce_eager else [])


@contextlib.contextmanager
def vllm_servers(models: list[str], devices: list[str | None], options: dict, log_dir: Path,
                 start_seconds: float = 900) -> Iterator[dict[str, str]]:
    """Starts one server per model on each device group (all at once: they load in parallel), and
    yields each model's endpoints, comma-separated; stops them all on the way out."""
    servers: dict[str, list[VLLMServer]] = {}
    try:
        for index, model in enumerate(dict.fromkeys(models)):
            for n, device in enumerate(devices):  # each kept at once, so that a failed start stops the others
                log = log_dir / f"vllm-server-{index}-{n}.log"
                servers.setdefault(model, []).append(VLLMServer(model, log, server_args(**options), device))
        yield {model: ",".join(s.wait_ready(start_seconds) for s in started) for model, started in servers.items()}
    finally:
        for started in servers.values():
            for server in started:
                server.stop()


def _free_port() -> int:
    """A localhost port free now and not given to another server of this process."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port not in _TAKEN_PORTS:
            _TAKEN_PORTS.add(port)
            return port


def _model_ids(body: bytes) -> list[str]:
    """The models a `GET /v1/models` answer lists (none if it is not such an answer)."""
    try:
        return [str(model.get("id")) for model in json.loads(body)["data"] if isinstance(model, dict)]
    except (ValueError, KeyError, TypeError):
        return []


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _die_with_parent(parent: int) -> None:
    """In the server's process before it runs: the kernel stops it if prox dies (even by SIGKILL),
    so no server outlives its run (servers are started from prox's main thread, whose end is the
    process's). Linux only; elsewhere the run's own stop does it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # prox died before the request took hold
        os._exit(1)

"""The vLLM engine for real, on vLLM's CPU build (`make test` installs it; on a GPU machine with vLLM
the same tests run on the GPU). A small random Llama with the refiners' tokenizer:
- `prox refine` picks vLLM by itself (--engine auto), starts one engine for the two stages (they name
  the same model), and writes, at both stages, the programs that the transformers engine writes for
  the same greedy model, and the same doc drop probabilities; a prompt over the context is recorded;
- both stages end to end pass `prox verify`, and every document's words are counted;
- `--engine openai` against vLLM's own OpenAI server, started here on localhost, writes them too
  (the probabilities through the server's logprob_token_ids field);
- with --constrained (llguidance, through vLLM's structured outputs offline and at the server), every
  program of both stages parses with no diagnostics and names lines of its own document, where the
  free programs are mostly malformed;
- with `--workers 2`, prox starts vLLM's server for the workers; a run killed (SIGKILL, the whole
  process group) during generation leaves no server behind, and rerun, writes what one uninterrupted
  process with the engine in it writes.
"""

import contextlib
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    TRANSFORMERS,
    VLLM,
    assert_same_drop_probabilities,
    needs_vllm,
    read_output,
    refine_args,
    refined_outputs,
    run_prox,
)
from vllm_server import tiny_server

from prox.language import parse_program

pytestmark = [pytest.mark.slow, needs_vllm]
SERVER_START_SECONDS = 600


@pytest.fixture(scope="module")
def server(vllm_model, tmp_path_factory):
    """Started when the module's first test asks for it, so it loads while the other runs go on."""
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    started = tiny_server(vllm_model, log, 0.1)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def vllm_run(vllm_documents, vllm_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("vllm-run") / "out"
    result = run_prox(*refine_args(vllm_documents, out, vllm_model, *VLLM))  # --engine auto
    (out / "run.log").write_text(result.stdout + result.stderr)  # vLLM logs to stdout
    return out


def test_vllm_writes_the_programs_of_the_transformers_engine(server, vllm_run, vllm_documents, vllm_model,
                                                            tmp_path):
    settings = json.loads((vllm_run / "logs" / "settings.json").read_text())
    assert settings["engine"]["kind"] == "vllm"  # auto picks vLLM wherever it is installed
    log = (vllm_run / "run.log").read_text()
    assert log.count("Initializing a V1 LLM engine") == 1  # both stages share it
    plugin = "prox's vLLM plugin: grammars validated once, built per thread, CPU masks by rows"
    assert log.count(plugin) >= 2  # in the engine core and the worker
    run_prox(*refine_args(vllm_documents, tmp_path / "hf", vllm_model, *TRANSFORMERS))
    by_vllm, by_transformers = refined_outputs(vllm_run), refined_outputs(tmp_path / "hf")
    assert by_vllm == by_transformers
    assert_same_drop_probabilities(vllm_run, tmp_path / "hf")
    assert len(by_vllm) == 9 and sum(chunk is not None for _, chunk, _, _ in by_vllm.values()) == 8
    kept, _ = read_output(vllm_run)
    too_long = [row["metadata"] for row in kept if row["metadata"]["prox_reason"] == "engine_error"]
    assert len(too_long) == 1 and "does not fit the model's context of 640" in too_long[0]["prox_engine_error"]


def test_both_stages_end_to_end_pass_verify_and_count_every_word(vllm_run, vllm_documents):
    assert "OK" in run_prox("verify", str(vllm_documents[0]), str(vllm_run)).stdout
    stats = json.loads((vllm_run / "stats.json").read_text())
    assert stats["words_before"] == sum(len(row["text"].split()) for row in vllm_documents[1])
    assert stats["input"] == 9 and stats["shards"]["done"] == 3


def test_the_openai_engine_against_vllms_own_server_writes_the_same_programs(server, vllm_run, vllm_documents,
                                                                              vllm_model, tmp_path):
    url = server.wait_ready(SERVER_START_SECONDS)
    run_prox(*refine_args(vllm_documents, tmp_path / "served", vllm_model, "--engine", "openai", "--endpoint", url))
    assert refined_outputs(tmp_path / "served") == refined_outputs(vllm_run)
    assert_same_drop_probabilities(tmp_path / "served", vllm_run)


def test_constrained_programs_parse_cleanly_on_vllm_and_on_its_server(server, vllm_run, vllm_documents, vllm_model,
                                                                     tmp_path):
    url = server.wait_ready(SERVER_START_SECONDS)
    run_prox(*refine_args(vllm_documents, tmp_path / "offline", vllm_model, *VLLM, "--constrained", "--keep-raw"))
    run_prox(*refine_args(vllm_documents, tmp_path / "served", vllm_model, "--engine", "openai", "--endpoint", url,
                          "--constrained", "--keep-raw"))
    assert refined_outputs(tmp_path / "offline") == refined_outputs(tmp_path / "served")
    kept, dropped = read_output(tmp_path / "offline")
    judged = [row["metadata"] for row in kept + dropped if row["metadata"]["prox_reason"] != "engine_error"]
    assert len(judged) == 8 and any(m["chunk_program"] for m in judged)
    for metadata in judged:
        for program, level in ((metadata["doc_program"], "doc"), (metadata["chunk_program"], "chunk")):
            parsed = parse_program(program, level) if program is not None else None
            assert parsed is None or (parsed.operations and not parsed.diagnostics), program
            for op in parsed.operations if parsed else ():
                assert getattr(op, "line_end", 0) <= metadata["raw_content"].count("\n")
    free = [row["metadata"] for row in sum(read_output(vllm_run), []) if row["metadata"]["doc_program"]]
    assert sum(bool(parse_program(m["doc_program"], "doc").diagnostics) for m in free) >= len(free) // 2


def test_workers_share_prox_s_vllm_server_and_a_killed_run_resumes_to_the_same_output(vllm_run, vllm_documents,
                                                                                       vllm_model, tmp_path):
    """`--workers 2`: prox starts vLLM's server and two worker processes send it their requests.
    Killed (SIGKILL, prox's whole process group) during generation, the run leaves no server behind;
    rerun, it writes what one uninterrupted process with the engine in it writes."""
    out = tmp_path / "out"
    args = refine_args(vllm_documents, out, vllm_model, *VLLM, "--workers", "2")
    server_log = out / "logs" / "vllm-server-0-0.log"
    for _ in range(3):  # on a loaded machine the last shards may all end before the kill lands: again
        shutil.rmtree(out, ignore_errors=True)
        process = subprocess.Popen([sys.executable, "-m", "prox", *args], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 600
        while not list((out / "logs" / "shards").glob("*.json")) and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)  # prox and its workers; the server has a session of its own
        process.wait()
        while holders_of(server_log) and time.time() < deadline:  # the kernel stops it as prox dies
            time.sleep(0.5)
        assert not holders_of(server_log)
        if 1 <= len(list((out / "logs" / "shards").glob("*.json"))) < 3:
            break
    else:
        pytest.fail("the kill should land mid-run: three times in a row, it came after the last shard")

    rerun = run_prox(*args)
    assert "nothing to do" not in rerun.stdout and not holders_of(server_log)
    assert refined_outputs(out) == refined_outputs(vllm_run)
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

"""The OpenAI engine against servers written here to misbehave, and against the real `prox serve` in a
subprocess (with a tiny random Llama): same completions as the transformers engine, batched requests,
and `prox refine --engine openai` end to end. Localhost only."""

import http.client
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from completion_server import FakeServer, prompt_key
from conftest import read_output, run_prox, sample_rows

from prox.engines import Completion, EngineError, GenerationSettings, Prompt
from prox.engines.openai_engine import OpenAIEngine
from prox.language.grammar import program_grammar


@pytest.fixture
def fake_server():
    servers = []

    def start(*args, **kwargs):
        servers.append(FakeServer(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def warnings():
    """The warnings prox logs meanwhile."""
    from datatrove.utils.logging import logger

    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(str(message)), level="WARNING")
    yield messages
    logger.remove(sink)


def engine_for(server, **options) -> OpenAIEngine:
    return OpenAIEngine("m", server.url, **{"retries": 3, "backoff": 0.01, "timeout": 5.0, **options})


PROMPTS = [Prompt(text=f"doc {i}") if i % 2 else Prompt(ids=(1, 100 + i)) for i in range(24)]
SETTINGS = GenerationSettings(16)


def expected(prompt: Prompt) -> str:
    return f"echo {prompt.text if prompt.text is not None else prompt_key(list(prompt.ids))}"


def test_transient_failures_are_retried_and_every_completion_arrives_in_order(fake_server, warnings):
    def answer(key, attempt):
        number = int(key.split()[-1]) if " " in key else int(key.split("-")[1]) - 100
        if number % 3 == 0 and attempt <= 2:
            return ("status", (500, 503)[attempt - 1], {"error": {"message": "engine overloaded"}})
        if number % 3 == 1 and attempt == 1:
            return "close"
        if number == 5 and attempt == 1:
            return ("status", 429, {"error": {"message": "slow down"}})
        return "ok"

    server = fake_server(answer)
    completions = engine_for(server, concurrency=4).generate(PROMPTS, SETTINGS)
    assert [c.text for c in completions] == [expected(p) for p in PROMPTS]
    assert all(c.error is None and c.output_tokens == 3 and c.prompt_tokens == 7 for c in completions)
    assert sorted(server.attempts.values()) == sorted(
        3 if i % 3 == 0 else 2 if i % 3 == 1 or i == 5 else 1 for i in range(24))
    assert sum("HTTP 50" in w for w in warnings) == 16 and sum("HTTP 429: slow down" in w for w in warnings) == 1
    assert all(re.search(r"retry [12] of 3 in", w) for w in warnings)
    assert all(p == {"model": "m", "prompt": p["prompt"], "max_tokens": 16, "temperature": 0, "n": 1}
               for p in server.payloads)


def test_requests_share_keep_alive_connections_and_reopen_closed_ones(fake_server, warnings):
    server = fake_server()
    engine = engine_for(server, concurrency=3)
    for _ in range(3):
        assert [c.text for c in engine.generate(PROMPTS, SETTINGS)] == [expected(p) for p in PROMPTS]
    assert len(server.clients) <= 3  # one connection per worker thread, kept across calls
    server.answer = lambda key, attempt: "close" if attempt == 4 else "ok"  # the server hangs up on idle ones
    assert [c.text for c in engine.generate(PROMPTS, SETTINGS)] == [expected(p) for p in PROMPTS]
    assert set(server.attempts.values()) == {5}  # reopened at once, without a retry
    assert not warnings


def test_rejected_and_malformed_requests_are_recorded_per_prompt(fake_server):
    too_long = "This model's maximum context length is 2048 tokens. However, you requested 4000 tokens " + "x" * 500

    def answer(key, attempt):
        if key == "doc 3":
            return ("status", 400, {"object": "error", "message": too_long, "code": 400})
        if key == "doc 5":
            return ("status", 413, b"request entity too large")
        if key == "doc 7":
            return ("status", 200, b"<html>not json</html>")
        if key == "doc 9":
            return ("status", 200, {"choices": []})
        if key == "doc 11":
            return ("status", 403, {"error": {"message": "blocked by policy"}})
        return "ok"

    server = fake_server(answer)
    completions = engine_for(server).generate(PROMPTS, SETTINGS)
    errors = {i: c.error for i, c in enumerate(completions) if c.error}
    assert sorted(errors) == [3, 5, 7, 9, 11]
    assert errors[3].startswith("server rejected the request (HTTP 400): This model's maximum context length")
    assert len(errors[3]) < 400
    assert errors[5] == "server rejected the request (HTTP 413): request entity too large"
    assert "malformed response" in errors[7] and "malformed response" in errors[9]
    assert errors[11] == "server rejected the request (HTTP 403): blocked by policy"
    assert all(server.attempts[k] == 1 for k in ("doc 3", "doc 5", "doc 7", "doc 9", "doc 11"))  # no retry
    assert [c.text for i, c in enumerate(completions) if i not in errors] == [
        expected(p) for i, p in enumerate(PROMPTS) if i not in errors]


def test_a_server_slower_than_the_timeout_fails_the_engine_after_the_retries(fake_server):
    server = fake_server(lambda key, attempt: ("sleep", 1.0) if key == "doc 1" else "ok")
    engine = engine_for(server, timeout=0.2, retries=2)
    started = time.perf_counter()
    with pytest.raises(EngineError, match=rf"{server.url}/v1/completions failed 3 times; last error: .*timed out"):
        engine.generate(PROMPTS[:4], SETTINGS)
    assert server.attempts["doc 1"] == 3
    assert time.perf_counter() - started < 3


def test_giving_up_abandons_the_requests_still_waiting(fake_server):
    """A request that gives up fails the call at once, and the threads still waiting on other replies are
    woken, so the failing task's process does not wait for them at exit."""
    server = fake_server(lambda key, attempt: ("sleep", 30) if key == "doc 3" else ("status", 503, b"down"))
    engine = engine_for(server, timeout=60, retries=1)
    started = time.perf_counter()
    with pytest.raises(EngineError, match="HTTP 503: down"):
        engine.generate(PROMPTS[:4], SETTINGS)
    while any(t.name.startswith("prox-openai") for t in threading.enumerate()):
        assert time.perf_counter() - started < 5
        time.sleep(0.05)


def test_a_server_that_is_down_fails_the_engine(fake_server):
    server = fake_server()
    server.close()
    with pytest.raises(EngineError, match="failed 2 times; last error: ConnectionRefusedError"):
        engine_for(server, retries=1).generate(PROMPTS[:2], SETTINGS)


@pytest.mark.parametrize("models, status, message", [
    (401, 200, r"refused the API key \(HTTP 401: Incorrect API key provided\)"),
    (None, 401, r"refused all 24 requests of this batch; check the API key.*HTTP 401"),
    ([{"id": "other"}], 404, r"check the model name \('m'; the server lists other\).*does not exist"),
])
def test_a_misconfigured_run_fails_the_engine_with_what_to_check(fake_server, models, status, message):
    error = {"error": {"message": "The model `m` does not exist." if status == 404 else "Unauthorized"}}
    server = fake_server(lambda key, attempt: ("status", status, error), models=models)
    with pytest.raises(EngineError, match=message):
        engine_for(server).generate(PROMPTS, SETTINGS)


def test_the_context_caps_generation_of_id_prompts(fake_server):
    server = fake_server(models=[{"id": "m", "max_model_len": 64}])
    prompts = [Prompt(ids=tuple(range(60))), Prompt(ids=tuple(range(64))), Prompt(text="doc 1")]
    completions = engine_for(server).generate(prompts, SETTINGS)
    assert completions[1] == Completion("", 64, 0, error="prompt of 64 tokens does not fit the model's context of 64")
    assert {prompt_key(p["prompt"]): p["max_tokens"] for p in server.payloads} == {
        prompt_key(list(range(60))): 4, "doc 1": 16}


def test_the_key_comes_from_the_argument_or_the_environment(fake_server, monkeypatch):
    server = fake_server(models=[{"id": "m"}])
    monkeypatch.delenv("PROX_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    engine_for(server).generate(PROMPTS[:1], SETTINGS)
    monkeypatch.setenv("OPENAI_API_KEY", "from-openai")
    engine_for(server).generate(PROMPTS[:1], SETTINGS)
    monkeypatch.setenv("PROX_API_KEY", "from-prox")
    engine_for(server).generate(PROMPTS[:1], SETTINGS)
    engine_for(server, api_key="given").generate(PROMPTS[:1], SETTINGS)
    assert server.authorizations == [None, None, "Bearer from-openai", "Bearer from-openai", "Bearer from-prox",
                                     "Bearer from-prox", "Bearer given", "Bearer given"]


def test_the_endpoint_may_end_in_v1(fake_server):
    server = fake_server()
    engine = OpenAIEngine("m", server.url + "/v1/")
    assert engine.endpoint == server.url
    assert engine.generate(PROMPTS[:2], SETTINGS)[1].text == "echo doc 1"
    with pytest.raises(ValueError, match="http"):
        OpenAIEngine("m", "ftp://host")


# --- the server's batching, with a stand-in engine ----------------------------------------------


class StandInEngine:
    """Behaves like the transformers engine where it matters here: texts tokenized (one id per character),
    each prompt capped at its own room in the context whatever its batch-mates; a prompt starting with
    id 7 ends its text after 2 tokens; one starting with 666 makes the engine fail."""

    context = 64

    def __init__(self):
        self.calls: list[tuple[list[int], int]] = []
        self.tokenizer = lambda texts: {"input_ids": [[ord(c) for c in text] for text in texts]}
        embeddings = type("Embeddings", (), {"num_embeddings": 1000})()
        self.model = type("Model", (), {"get_input_embeddings": lambda _: embeddings})()

    def generate(self, prompts, settings):
        ids = [list(p.ids) if p.ids is not None else self.tokenizer([p.text])["input_ids"][0] for p in prompts]
        lengths = [len(i) for i in ids]
        self.calls.append((lengths, settings.max_new_tokens))
        if any(i[0] == 666 for i in ids):
            raise RuntimeError("CUDA out of memory")
        completions = []
        for first, n in zip((i[0] for i in ids), lengths, strict=True):
            cap = min(settings.max_new_tokens, self.context - n)
            made = min(cap, 2) if first == 7 else cap
            completions.append(Completion("", n, 0, error=f"prompt of {n} tokens does not fit") if n >= self.context
                               else Completion(f"{n}:{made}", n, made))
        return completions


@pytest.fixture
def stand_in_server():
    from prox.serving import CompletionServer

    engine = StandInEngine()
    server = CompletionServer(("127.0.0.1", 0), engine, "stand-in", max_wait_s=0.3)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server, engine
    server.shutdown()
    server.server_close()


def test_concurrent_requests_cost_one_engine_call_and_each_prompt_gets_its_own_room(stand_in_server):
    server, engine = stand_in_server
    lengths = [10, 40, 50, 30, 20]  # rooms 54, 24, 14, 34, 44; max_tokens 30
    replies = [None] * len(lengths)

    def client(i):
        replies[i] = call("POST", f"{server.url}/v1/completions",
                          {"prompt": [7 if lengths[i] == 20 else 1] * lengths[i], "max_tokens": 30})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(lengths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [body["usage"]["completion_tokens"] for _, body in replies] == [30, 24, 14, 30, 2]
    assert [body["choices"][0]["finish_reason"] for _, body in replies] == ["length"] * 4 + ["stop"]
    [(lengths, cap)] = engine.calls  # one engine call, which gives each prompt its own room
    assert sorted(lengths) == [10, 20, 30, 40, 50] and cap == 30


def test_an_engine_failure_fails_its_requests_and_the_server_goes_on(stand_in_server):
    server, _ = stand_in_server
    status, body = call("POST", f"{server.url}/v1/completions", {"prompt": [[666, 1]]})
    assert status == 500 and "RuntimeError: CUDA out of memory" in body["error"]["message"]
    status, body = call("POST", f"{server.url}/v1/completions", {"prompt": "abc", "max_tokens": 5})
    assert status == 200 and body["choices"] == [{"index": 0, "text": "3:5", "logprobs": None,
                                                  "finish_reason": "length"}]


# --- the real `prox serve` -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    """`prox serve` on a free port with the tiny model: (base URL, model name)."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "prox", "serve", "--model", str(tiny_model), "--port", "0",
                                    "--dtype", "float32", "--max-batch-wait-ms", "100"],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.time() + 120
    while not (ready := re.search(r"serving .* on (http://\S+)", log.read_text())):
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            pytest.fail(f"prox serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    yield ready.group(1), str(tiny_model)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert log.read_text().rstrip().endswith("stopped")


def call(method: str, url: str, body=None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


@pytest.fixture(scope="module")
def transformers_engine(tiny_model):
    from prox.engines.transformers_engine import TransformersEngine

    return TransformersEngine(str(tiny_model), dtype="float32")


@pytest.mark.slow
def test_served_completions_match_the_transformers_engine(served, transformers_engine):
    url, model = served
    tokenizer = transformers_engine.tokenizer
    texts = [row["text"][: 40 + 37 * i] for i, row in enumerate(sample_rows()[:20])]
    prompts = [Prompt(ids=tuple(tokenizer(t)["input_ids"])) if i % 2 else Prompt(text=t) for i, t in enumerate(texts)]
    prompts[4] = Prompt(ids=tuple(tokenizer(" ".join(texts) * 3)["input_ids"]))  # longer than the 512 of context
    prompts[7] = Prompt(text=" ".join(texts) * 3)
    settings = GenerationSettings(12)
    remote = OpenAIEngine(model, url, concurrency=6).generate(prompts, settings)
    local = transformers_engine.generate(prompts, settings)
    for i in (4, 7):
        assert local[i].error and "does not fit the model's context of 512" in remote[i].error
    assert remote[7].error.startswith("server rejected the request (HTTP 400)")
    assert [c for i, c in enumerate(remote) if i not in (4, 7)] == [c for i, c in enumerate(local) if i not in (4, 7)]
    assert all(c.output_tokens > 0 for i, c in enumerate(remote) if i not in (4, 7))


@pytest.mark.slow
def test_served_generation_runs_to_each_prompts_own_end_of_context(served, transformers_engine):
    """Prompts batched together still each generate up to the room they leave, as vLLM's do."""
    url, model = served
    prompts = [list(range(3, 3 + n)) for n in (440, 500, 470)]
    status, body = call("POST", f"{url}/v1/completions", {"model": model, "prompt": prompts, "max_tokens": 100})
    assert status == 200
    alone = [transformers_engine.generate([Prompt(ids=tuple(p))], GenerationSettings(100))[0] for p in prompts]
    assert [c.output_tokens for c in alone] == [72, 12, 42]
    assert [choice["text"] for choice in body["choices"]] == [c.text for c in alone]
    assert body["usage"]["completion_tokens"] == 72 + 12 + 42


def test_transformers_engine_output_does_not_depend_on_batch_mates(transformers_engine):
    """A longer batch-mate caps the batch; the prompts it cut short are generated again on their own."""
    prompts = [Prompt(ids=tuple(range(3, 3 + n))) for n in (440, 500, 470)]
    together = transformers_engine.generate(prompts, GenerationSettings(100))
    alone = [transformers_engine.generate([p], GenerationSettings(100))[0] for p in prompts]
    assert together == alone and [c.output_tokens for c in alone] == [72, 12, 42]


@pytest.mark.slow
def test_concurrent_requests_are_generated_in_one_batch(served):
    url, model = served
    before = call("GET", f"{url}/health")[1]["batches"]
    barrier, replies = threading.Barrier(8), [None] * 8

    def client(i):
        barrier.wait()
        replies[i] = call("POST", f"{url}/v1/completions", {"model": model, "prompt": f"client {i}",
                                                             "max_tokens": 4})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(status == 200 and body["choices"][0]["text"] for status, body in replies)
    assert call("GET", f"{url}/health")[1]["batches"] - before <= 2


@pytest.mark.slow
def test_served_api(served):
    url, model = served
    status, models = call("GET", f"{url}/v1/models")
    assert status == 200 and models["data"][0]["id"] == model and models["data"][0]["max_model_len"] == 512
    status, body = call("POST", f"{url}/v1/completions", {"model": model, "prompt": ["a b", [1, 2, 3]],
                                                           "max_tokens": 3})
    assert status == 200 and [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] == 6 and body["choices"][0]["finish_reason"] == "length"
    status, body = call("POST", f"{url}/v1/completions", {"prompt": [1, 2, 3], "max_tokens": 2, "logprobs": 0,
                                                           "logprob_token_ids": [5, 7]})
    first = body["choices"][0]["logprobs"]["top_logprobs"][0]
    assert status == 200 and set(first) == {"token_id:5", "token_id:7"} and all(v < 0 for v in first.values())
    status, body = call("POST", f"{url}/v1/completions", {"prompt": "Keep or drop?", "max_tokens": 8,
                                                           "structured_outputs": {"grammar": program_grammar("doc")}})
    assert status == 200 and body["choices"][0]["text"].strip() in ("drop_doc()", "keep_doc()")  # the random model
    for payload, code, message in [
        ({"model": "gpt-4", "prompt": "a"}, 404, "The model `gpt-4` does not exist"),
        (b"{not json", 400, "not valid JSON"),
        ([1, 2], 400, "JSON object"),
        ({"prompt": []}, 400, "prompt must be"),
        ({"prompt": [1, 32000]}, 400, "token ids must lie in [0, 32000)"),
        ({"prompt": "a", "temperature": 0.7}, 400, "unsupported: temperature"),
        ({"prompt": "a", "max_tokens": 0}, 400, "max_tokens"),
        ({"prompt": "a", "logprobs": 5}, 400, "unsupported: logprobs"),
        ({"prompt": "a", "logprobs": 0, "logprob_token_ids": [1, 32000]}, 400, "logprob_token_ids must be"),
        ({"prompt": "a", "structured_outputs": {"regex": "a+"}}, 400, "takes only"),
        ({"prompt": "a", "guided_grammar": "root ::= \"a\""}, 400, "unsupported: guided_grammar"),
    ]:
        status, body = call("POST", f"{url}/v1/completions", payload)
        assert status == code and message in body["error"]["message"], (payload, body)
        assert body["error"]["code"] == code
    assert call("GET", f"{url}/nowhere")[0] == 404
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    connection.putrequest("POST", "/v1/completions")
    connection.putheader("Content-Length", str(16 * 1024 * 1024 + 1))
    connection.endheaders()  # the server answers before the body is sent
    assert connection.getresponse().status == 413


# --- `prox refine --engine openai` end to end ----------------------------------------------------


@pytest.mark.slow
def test_refine_with_openai_engine_matches_transformers(served, tiny_model, tmp_path):
    if "--endpoint" not in run_prox("refine", "--help").stdout:
        pytest.skip("prox refine has no --endpoint yet")
    url, model = served
    rows = sorted(sample_rows(), key=lambda r: len(r["text"]))[:3]
    rows = [{"id": r["id"], "text": r["text"], "metadata": {"source": r["metadata"]["source"]}} for r in rows]
    rows.append({"id": "empty", "text": "", "metadata": {"source": "test"}})
    shards = tmp_path / "shards"
    shards.mkdir()
    for index in range(2):
        pq.write_table(pa.Table.from_pylist(rows[index::2]), shards / f"shard-{index}.parquet")
    # whole shards in one batch: each engine's output for a prompt must not depend on its batch-mates
    common = ("refine", "--input", str(shards), "--doc-model", model, "--chunk-model", model, "--batch-size", "8")
    run_prox(*common, "--output", str(tmp_path / "local"), "--engine", "transformers", "--dtype", "float32")
    run_prox(*common, "--output", str(tmp_path / "remote"), "--engine", "openai", "--endpoint", url)

    def outcome(out):
        kept, dropped = read_output(out)
        return {row["id"]: (row["text"], row["metadata"]["doc_program"], row["metadata"]["chunk_program"],
                            row["metadata"]["prox_reason"]) for row in kept + dropped}

    local, remote = outcome(tmp_path / "local"), outcome(tmp_path / "remote")
    assert sorted(remote) == sorted(r["id"] for r in rows)
    assert remote == local
    assert all(remote[key][1] and remote[key][3] != "engine_error" for key in remote if key != "empty")


def test_several_endpoints_share_the_requests_by_what_each_has_in_flight(fake_server):
    """One server per GPU: the requests go where fewest are waiting, so a slow server gets fewer;
    the completions come back in order, and the smaller context of the two caps id prompts."""
    slow = fake_server(lambda key, attempt: ("sleep", 0.3), models=[{"id": "m", "max_model_len": 64}])
    fast = fake_server(models=[{"id": "m", "max_model_len": 4096}])
    engine = OpenAIEngine("m", f"{slow.url}, {fast.url}/v1", concurrency=4, retries=0, timeout=5.0)
    assert engine.endpoints == [slow.url, fast.url]
    completions = engine.generate(PROMPTS, SETTINGS)
    assert [c.text for c in completions] == [expected(p) for p in PROMPTS]
    assert 1 <= len(slow.payloads) < len(fast.payloads) and len(slow.payloads) + len(fast.payloads) == 24
    long = Prompt(ids=tuple(range(64)))
    assert "does not fit the model's context of 64" in engine.generate([long], SETTINGS)[0].error


def test_a_retry_goes_to_another_endpoint(fake_server):
    """A server that keeps failing (one GPU's server crashed) does not fail the task while another
    serves: each retry goes elsewhere."""
    failing = fake_server(lambda key, attempt: ("status", 503, {"error": {"message": "engine dead"}}), models=[])
    working = fake_server(models=[])
    engine = OpenAIEngine("m", f"{failing.url},{working.url}", concurrency=4, retries=2, backoff=0.01, timeout=5.0)
    completions = engine.generate(PROMPTS, SETTINGS)
    assert [c.text for c in completions] == [expected(p) for p in PROMPTS]
    assert failing.payloads and len(working.payloads) == 24

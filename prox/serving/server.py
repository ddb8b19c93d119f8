"""An OpenAI-compatible completions server over the transformers engine, for machines without vLLM.

`POST /v1/completions` (greedy only), `GET /v1/models`, `GET /health`. Handler threads parse and
check requests and put their prompts on a queue; one generation thread takes everything waiting
(after a short wait for stragglers, up to a bound) and generates it in as few engine calls as it
can, so N concurrent clients cost one batched generation instead of N serial ones.

A response does not depend on what other clients sent at the same time: the engine gives each
prompt up to min(max_tokens, context - its length) new tokens, like vLLM, whatever its batch-mates
(see TransformersEngine). A prompt the engine cannot
serve (longer than the context) fails its request with HTTP 400, as vLLM does. Request bodies
are bounded and parsed as JSON; nothing in a request is ever evaluated.

Of vLLM's fields, prox serve takes the two prox sends: `structured_outputs.grammar` (the output
follows the grammar, as with --constrained) and `logprob_token_ids` with `logprobs: 0` (the
log-probabilities of those tokens at the first generated position only, keyed "token_id:ID").
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from datatrove.utils.logging import logger

from prox.engines.base import Completion, GenerationSettings, Prompt

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_BATCH_PROMPTS = 256
DEFAULT_MAX_TOKENS = 16  # OpenAI's and vLLM's default for completions
IDLE_CONNECTION_S = 300  # a keep-alive connection idle this long is closed (clients reopen it)


class RequestError(Exception):
    """A request the server refuses: its HTTP status and an OpenAI-style error type."""

    def __init__(self, status: int, message: str, kind: str = "BadRequestError"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


@dataclass
class _Job:
    """One request's prompts on their way through the generation thread."""

    prompts: list[Prompt]
    settings: GenerationSettings
    done: threading.Event = field(default_factory=threading.Event)
    completions: list[Completion] = field(default_factory=list)
    failure: str | None = None


class MicroBatcher:
    """Collects the prompts of concurrent requests and runs them through one engine, one batch at a time."""

    def __init__(self, engine, max_wait_s: float = 0.02, max_prompts: int = MAX_BATCH_PROMPTS):
        self.engine, self.max_wait_s, self.max_prompts = engine, max_wait_s, max_prompts
        self.queue: queue.Queue[_Job] = queue.Queue()
        self.stopping = threading.Event()
        self.batches = self.prompts = 0
        self.thread = threading.Thread(target=self._run, name="prox-generation", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def submit(self, prompts: list[Prompt], settings: GenerationSettings) -> _Job:
        """Waits for the request's completions (or its failure) and returns the finished job."""
        if self.stopping.is_set():
            raise RequestError(503, "the server is shutting down", "ServiceUnavailableError")
        job = _Job(prompts, settings)
        self.queue.put(job)
        while not job.done.wait(0.5):
            if self.stopping.is_set():
                raise RequestError(503, "the server is shutting down", "ServiceUnavailableError")
        return job

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                jobs = [self.queue.get(timeout=0.5)]
            except queue.Empty:
                continue
            deadline = time.monotonic() + self.max_wait_s
            count = len(jobs[0].prompts)
            while count < self.max_prompts:
                try:
                    job = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                jobs.append(job)
                count += len(job.prompts)
            try:
                self._generate(jobs)
            except Exception as error:  # fails these requests, not the server
                logger.exception("generation failed")
                for job in jobs:
                    job.failure = job.failure or f"generation failed: {type(error).__name__}: {error}"
                    job.done.set()

    def _generate(self, jobs: list[_Job]) -> None:
        """Generates every prompt of `jobs`: one engine call per distinct settings."""
        by_settings: dict[GenerationSettings, list[_Job]] = defaultdict(list)
        for job in jobs:
            by_settings[job.settings].append(job)
        for settings, group in by_settings.items():
            try:
                completions = iter(self.engine.generate([p for job in group for p in job.prompts], settings))
            except Exception as error:  # fails these requests, not the server
                logger.exception("generation failed")
                for job in group:
                    job.failure = f"generation failed: {type(error).__name__}: {error}"
                continue
            for job in group:
                job.completions = [next(completions) for _ in job.prompts]
        self.batches += 1
        self.prompts += sum(len(job.prompts) for job in jobs)
        for job in jobs:
            job.done.set()


class CompletionServer(ThreadingHTTPServer):
    """Serves one model under one name; the engine is used only by the generation thread."""

    daemon_threads = True
    request_queue_size = 256  # a client's workers connect all at once; a full backlog costs each a 1 s SYN retry

    def __init__(self, address: tuple[str, int], engine, model_name: str, max_wait_s: float = 0.02,
                 max_body_bytes: int = MAX_BODY_BYTES):
        self.engine, self.model_name, self.max_body_bytes = engine, model_name, max_body_bytes
        self.vocab_size = engine.model.get_input_embeddings().num_embeddings
        self.batcher = MicroBatcher(engine, max_wait_s)
        self.created = int(time.time())
        super().__init__(address, CompletionHandler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self.batcher.start()
        try:
            super().serve_forever(poll_interval)
        finally:
            self.batcher.stop()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class CompletionHandler(BaseHTTPRequestHandler):
    server: CompletionServer
    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "prox-serve"
    disable_nagle_algorithm = True
    timeout = IDLE_CONNECTION_S

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            batcher = self.server.batcher
            self._reply(200, {"status": "ok", "model": self.server.model_name, "batches": batcher.batches,
                              "prompts": batcher.prompts})
        elif path == "/v1/models":
            self._reply(200, {"object": "list", "data": [{
                "id": self.server.model_name, "object": "model", "created": self.server.created, "owned_by": "prox",
                "max_model_len": self.server.engine.context}]})
        else:
            self._error(RequestError(404, f"no route {path or '/'}", "NotFoundError"))

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path != "/v1/completions":
                self._discard_body()
                raise RequestError(404, f"no route {path or '/'} (POST /v1/completions)", "NotFoundError")
            request = self._read_json()
            prompts, settings = self._check(request)
            job = self.server.batcher.submit(prompts, settings)
        except RequestError as error:
            return self._error(error)
        if job.failure:
            return self._error(RequestError(500, job.failure, "InternalServerError"))
        refused = next((c.error for c in job.completions if c.error), None)
        if refused:
            return self._error(RequestError(400, refused))
        self._reply(200, self._response(job))

    def _response(self, job: _Job) -> dict:
        context = self.server.engine.context
        max_tokens = job.settings.max_new_tokens
        choices = [{"index": i, "text": c.text, "logprobs": _logprobs(c, job.settings.scored_tokens),
                    "finish_reason": "length" if c.output_tokens >= min(max_tokens, context - c.prompt_tokens)
                    else "stop"} for i, c in enumerate(job.completions)]
        prompt_tokens = sum(c.prompt_tokens for c in job.completions)
        output_tokens = sum(c.output_tokens for c in job.completions)
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
                "model": self.server.model_name, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens,
                          "total_tokens": prompt_tokens + output_tokens}}

    def _read_json(self) -> dict:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise RequestError(411, "send the body with a Content-Length, not chunked")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            raise RequestError(411, "a Content-Length header is required") from None
        if length < 0 or length > self.server.max_body_bytes:
            self.close_connection = True  # the body is not read, so the connection cannot be reused
            raise RequestError(413, f"request body of {length} bytes; at most {self.server.max_body_bytes}")
        try:
            request = orjson.loads(self.rfile.read(length))
        except orjson.JSONDecodeError as error:
            raise RequestError(400, f"the body is not valid JSON: {error}") from None
        if not isinstance(request, dict):
            raise RequestError(400, "the body must be a JSON object")
        return request

    def _discard_body(self) -> None:
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) <= self.server.max_body_bytes:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _check(self, request: dict) -> tuple[list[Prompt], GenerationSettings]:
        """The request's prompts and settings; RequestError for anything prox serve does not do."""
        model = request.get("model")
        if model is not None and model != self.server.model_name:
            raise RequestError(404, f"The model `{model}` does not exist; this server serves "
                               f"`{self.server.model_name}`.", "NotFoundError")
        max_tokens = request.get("max_tokens", DEFAULT_MAX_TOKENS)
        if max_tokens is None:
            max_tokens = self.server.engine.context  # as vLLM: up to the context's end
        if not _is_int(max_tokens) or max_tokens < 1:
            raise RequestError(400, "max_tokens must be a positive integer")
        scored = request.get("logprob_token_ids") or []
        if not isinstance(scored, list) or not all(_is_int(i) and 0 <= i < self.server.vocab_size for i in scored):
            raise RequestError(400, f"logprob_token_ids must be token ids in [0, {self.server.vocab_size})")
        unsupported = {
            "temperature": request.get("temperature") not in (None, 0, 0.0),
            "n": request.get("n") not in (None, 1),
            "best_of": request.get("best_of") not in (None, 1),
            "stream": bool(request.get("stream")),
            "echo": bool(request.get("echo")),
            "logprobs": request.get("logprobs") is not None and (request.get("logprobs") != 0 or not scored),
            "stop": bool(request.get("stop")),
            "suffix": bool(request.get("suffix")),
        }
        guided = sorted(key for key in request if key.startswith("guided_"))  # vLLM's old constraints: not ignored
        if wrong := [name for name, refused in unsupported.items() if refused] + guided:
            raise RequestError(400, f"prox serve decodes greedily, one choice per prompt, without streaming, "
                               f"and gives log-probabilities only for logprob_token_ids with logprobs 0; "
                               f"unsupported: {', '.join(wrong)}")
        grammar = _grammar(request.get("structured_outputs"))
        prompts = [replace(prompt, grammar=grammar) for prompt in self._prompts(request.get("prompt"))]
        return prompts, GenerationSettings(max_tokens, tuple(scored) if request.get("logprobs") == 0 else ())

    def _prompts(self, prompt) -> list[Prompt]:
        """A string, a list of token ids, or a list of either."""
        if isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(_is_int(i) for i in prompt)):
            prompt = [prompt]
        if not isinstance(prompt, list) or not prompt:
            raise RequestError(400, "prompt must be a string, a list of token ids, or a non-empty list of those")
        prompts = []
        for item in prompt:
            if isinstance(item, str):
                prompts.append(Prompt(text=item))
            elif isinstance(item, list) and item and all(_is_int(i) for i in item):
                if not all(0 <= i < self.server.vocab_size for i in item):
                    raise RequestError(400, f"token ids must lie in [0, {self.server.vocab_size})")
                prompts.append(Prompt(ids=tuple(item)))
            else:
                raise RequestError(400, "each prompt must be a string or a non-empty list of token ids")
        return prompts

    def _error(self, error: RequestError) -> None:
        if error.status >= 500:
            logger.warning(f"{self.command} {self.path}: HTTP {error.status}: {error.message}")
        self._reply(error.status, {"error": {"message": error.message, "type": error.kind, "param": None,
                                             "code": error.status}})

    def _reply(self, status: int, body: dict) -> None:
        data = orjson.dumps(body)
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        pass  # no access log: a refine run sends thousands of requests a minute; failures are logged above


def _grammar(structured_outputs) -> str | None:
    """The grammar of vLLM's `structured_outputs` field; any other constraint is refused, not ignored."""
    if structured_outputs is None:
        return None
    if not isinstance(structured_outputs, dict) or set(structured_outputs) - {"grammar"} or \
            not isinstance(structured_outputs.get("grammar"), str):
        raise RequestError(400, "structured_outputs: prox serve takes only {\"grammar\": \"...\"}")
    return structured_outputs["grammar"]


def _logprobs(completion: Completion, scored: tuple[int, ...]) -> dict | None:
    """vLLM's completions logprobs for `scored` at the first position (token ids as "token_id:ID")."""
    if not scored or completion.scores is None:
        return None
    return {"tokens": [], "token_logprobs": [], "text_offset": [0],
            "top_logprobs": [{f"token_id:{t}": lp for t, lp in zip(scored, completion.scores, strict=True)}]}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def serve(engine, model_name: str, host: str = "127.0.0.1", port: int = 8000, max_wait_s: float = 0.02) -> None:
    """Serves until SIGINT or SIGTERM, then stops accepting requests and closes the socket."""
    server = CompletionServer((host, port), engine, model_name, max_wait_s)

    def stop(_signal: int, _frame) -> None:  # shutdown() waits for serve_forever: call it from another thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"serving {model_name} on {server.url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    print("stopped", file=sys.stderr, flush=True)

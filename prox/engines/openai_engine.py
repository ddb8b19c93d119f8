"""Engine on an OpenAI-compatible completions server: `vllm serve`, `prox serve`, a hosted endpoint.

Each prompt is one `POST {endpoint}/v1/completions` (greedy, n=1), sent as token ids when the
prompt has them (vLLM and `prox serve` accept a list of ids) and as text otherwise, so the server
tokenizes it the way a local engine would; a chat prompt (prox annotate's teacher) is one
`POST {endpoint}/v1/chat/completions` of its messages. Requests are asynchronous (aiohttp, on an event loop in
a thread of the engine's own), up to `concurrency` in flight on as many keep-alive connections:
a GPU server batches what is in flight, so it wants hundreds, not a handful. Several endpoints
(comma-separated: one server per GPU) share the requests: each goes to the endpoint with the fewest
of this engine's requests in flight, and a retry to another endpoint than the one that failed.

Before the first request the engine reads `GET {endpoint}/v1/models` of each endpoint: a refused
key stops it at once, and the model's `max_model_len` (vLLM and `prox serve` report it) caps each id prompt's
generation at the context's end, as the reference's offline vLLM did; vLLM's server would otherwise
refuse every prompt whose length plus `max_tokens` exceeds the context (the doc stage asks for 2000
new tokens). An id prompt that leaves no room gets a Completion error without a request. Text
prompts (the chunk stage's, well under the context with their 256 new tokens) go as they are:
`prox serve` caps them itself, vLLM refuses one that does not fit, and that prompt records why.

Failure policy:
- Connection errors, timeouts, HTTP 408, 429 and 5xx (but 501 and 505) are the server's trouble,
  not the prompt's: retried up to `retries` times after `backoff * 2**attempt` seconds (at most 60,
  plus a little jitter; a `Retry-After` is honoured), then EngineError, so the task fails before its
  shard is committed and a rerun resumes it; the requests still in flight are abandoned. A server
  that hangs up without answering (as it does on a keep-alive connection it closed while idle) is
  asked again once at once, without counting as a failure.
- Any other 4xx (a prompt longer than the context, a body too large) is the server refusing this
  prompt: no retry, the prompt gets a Completion error with the server's message. A 2xx that is
  not a completion (not JSON, no choices) is recorded the same way.
- 401, 403, 404, 405, 501 and redirects speak of the configuration (key, model name, URL) rather
  than of a document. When every prompt of a call gets one, the engine raises EngineError naming
  the likely cause instead of recording each document as a failure. When some prompts of the call
  were served the configuration works, so the rejected ones are recorded like any other rejection
  (a gateway may well answer 403 to one document's content).
"""

from __future__ import annotations

import asyncio
import os
import random
import textwrap
import threading
import urllib.parse
import weakref
from dataclasses import dataclass

import aiohttp
import orjson
from datatrove.utils.logging import logger

from prox.engines.base import Completion, EngineError, GenerationSettings, Prompt

MAX_BACKOFF_S = 60.0
RETRIED_STATUSES = {408, 429}  # and every 5xx but these:
NOT_IMPLEMENTED = {501, 505}
CONFIGURATION_STATUSES = {401, 403, 404, 405, *NOT_IMPLEMENTED}  # and every 3xx: redirects are not followed
MESSAGE_CHARS = 300


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    location: str | None = None


class _Client:
    """An HTTP session and the event loop it runs on, in a thread of its own, so that the engine's
    synchronous callers (one thread per stage) share keep-alive connections across calls."""

    def __init__(self, concurrency: int, headers: dict, timeout: float):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="prox-openai", daemon=True)
        self.thread.start()

        async def open_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout))

        self.session = self.run(open_session())

    def run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def close(self) -> None:
        """Closes the connections (waking what waits on them) and stops the thread."""
        if self.loop.is_closed() or not self.loop.is_running():
            return
        if threading.current_thread() is self.thread:  # dropped by a callback of the loop itself
            self.loop.call_soon(self.loop.stop)
            return
        asyncio.run_coroutine_threadsafe(self.session.close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


class OpenAIEngine:
    """`model` is the name the server knows the model by (for vLLM, the path or hub name it was started
    with, or its --served-model-name). The key is `api_key`, else the environment's PROX_API_KEY, else
    OPENAI_API_KEY (as the openai client does: it is sent to whatever endpoint is named). `context`
    caps generation for servers that do not report the model's max_model_len."""

    concurrent_calls = True  # calls from several threads share the client's event loop

    def __init__(self, model: str, endpoint: str, api_key: str | None = None, concurrency: int = 256,
                 timeout: float = 600.0, retries: int = 5, backoff: float = 1.0, context: int | None = None):
        """`endpoint`: a server's base URL, or several, comma-separated."""
        self.endpoints = [base_url(e) for e in endpoint.split(",") if e.strip()]
        if not self.endpoints:
            raise ValueError("endpoint must be an http(s) URL like http://host:8000, not ''")
        self.endpoint = ", ".join(self.endpoints)  # for messages
        self._in_flight = dict.fromkeys(self.endpoints, 0)  # touched by the event loop's thread only
        self.model, self.timeout, self.retries, self.backoff = model, timeout, retries, backoff
        self.concurrency, self.context = concurrency, context
        key = api_key or os.environ.get("PROX_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        self.served_models: list[str] | None = None
        self._checked = False
        self._lock = threading.Lock()  # the client
        self._client: _Client | None = None

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]:
        if not prompts:
            return []
        with self._lock:
            if self._client is None:
                self._client = _Client(self.concurrency, self.headers, self.timeout)
                weakref.finalize(self, self._client.close)  # also at exit
            client = self._client
        try:
            return client.run(self._generate(client.session, prompts, settings))
        except EngineError:
            self.close()  # the task fails: nothing of this engine outlives it
            raise

    def close(self) -> None:
        """Closes the connections and stops the client's thread; a later call opens them again."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _generate(self, session: aiohttp.ClientSession, prompts: list[Prompt],
                        settings: GenerationSettings) -> list[Completion]:
        await self._check_server(session)
        slots = asyncio.Semaphore(self.concurrency)
        tasks = [asyncio.ensure_future(self._complete(session, p, settings, slots)) for p in prompts]
        try:
            results = await asyncio.gather(*tasks)
        except BaseException:  # one prompt gave up: the others are abandoned
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        self._raise_if_misconfigured(results)
        return [completion for completion, _ in results]

    async def _complete(self, session: aiohttp.ClientSession, prompt: Prompt, settings: GenerationSettings,
                        slots: asyncio.Semaphore) -> tuple[Completion, int | None]:
        """One prompt's Completion, with the HTTP status of a rejection (None when served)."""
        tokens = len(prompt.ids) if prompt.ids is not None else 0
        max_tokens = max_new_tokens = settings.max_new_tokens
        if prompt.ids is not None and self.context:
            if tokens >= self.context:
                return Completion("", tokens, 0, error=f"prompt of {tokens} tokens does not fit the model's context "
                                  f"of {self.context}"), None
            max_tokens = min(max_new_tokens, self.context - tokens)
        payload = {"model": self.model, "max_tokens": max_tokens, "temperature": 0, "n": 1}
        if prompt.messages is not None:
            path = "/v1/chat/completions"
            payload["messages"] = [{"role": role, "content": content} for role, content in prompt.messages]
        else:
            path = "/v1/completions"
            payload["prompt"] = list(prompt.ids) if prompt.ids is not None else prompt.text
        if prompt.grammar is not None:  # vLLM's field (its older guided_grammar is ignored by new servers)
            payload["structured_outputs"] = {"grammar": prompt.grammar}
        if settings.scored_tokens:  # vLLM's field; the ids come back as keys "token_id:ID"
            payload |= {"logprobs": 0, "logprob_token_ids": list(settings.scored_tokens),
                        "return_tokens_as_token_ids": True}
        async with slots:
            reply = await self._send(session, None, "POST", path, orjson.dumps(payload))
        if not 200 <= reply.status < 300:
            if 300 <= reply.status < 400:
                reason = f"redirected to {reply.location or 'an unnamed location'}"
            else:
                reason = message_of(reply.body) or "no message"
            return Completion("", tokens, 0, error=f"server rejected the request (HTTP {reply.status}): {reason}"), (
                reply.status)
        try:
            body = orjson.loads(reply.body)
            choice = body["choices"][0]
            text = choice["message"]["content"] if prompt.messages is not None else choice["text"]
            if not isinstance(text, str):
                raise TypeError(f"the completion's text is {type(text).__name__}, not a string")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError) as error:
            return Completion("", tokens, 0, error=f"malformed response from the server (HTTP 200): "
                              f"{type(error).__name__}: {shorten(str(error))}"), None
        scores = _scores(body["choices"][0], settings.scored_tokens) if settings.scored_tokens else None
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        output_tokens = usage.get("completion_tokens")
        return Completion(text.strip(" "), prompt_tokens if isinstance(prompt_tokens, int) else tokens,
                          output_tokens if isinstance(output_tokens, int) else 0, scores=scores), None

    def _raise_if_misconfigured(self, results: list[tuple[Completion, int | None]]) -> None:
        statuses = [status for _, status in results]
        if not all(s is not None and (s in CONFIGURATION_STATUSES or 300 <= s < 400) for s in statuses):
            return
        status, error = statuses[0], results[0][0].error
        if status in (401, 403):
            advice = "check the API key (--api-key, or PROX_API_KEY / OPENAI_API_KEY in the environment)"
        elif status == 404:
            listed = f"; the server lists {', '.join(self.served_models)}" if self.served_models else ""
            advice = f"check the model name ({self.model!r}{listed}) and the endpoint URL"
        else:
            advice = "check the endpoint URL"
        raise EngineError(f"{self.endpoint} refused all {len(results)} requests of this batch; {advice}. "
                          f"First refusal: {error}")

    async def _check_server(self, session: aiohttp.ClientSession) -> None:
        """Reads each endpoint's model list once: a refused key raises, the model's context is noted
        (the smallest, should the servers differ)."""
        if self._checked:
            return
        contexts = [await self._check_endpoint(session, endpoint) for endpoint in self.endpoints]
        self._checked = True
        if self.context is None and all(contexts):
            self.context = min(contexts)

    async def _check_endpoint(self, session: aiohttp.ClientSession, endpoint: str) -> int | None:
        """The model's context as the endpoint reports it (None if it does not)."""
        reply = await self._send(session, endpoint, "GET", "/v1/models", None)
        if reply.status in (401, 403):
            raise EngineError(f"{endpoint} refused the API key (HTTP {reply.status}: "
                              f"{message_of(reply.body) or 'no message'}); check --api-key, or PROX_API_KEY / "
                              "OPENAI_API_KEY in the environment")
        if reply.status != 200:  # not every server lists its models
            return None
        try:
            models = [m for m in orjson.loads(reply.body)["data"] if isinstance(m, dict)]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None
        self.served_models = [str(m.get("id")) for m in models]
        ours = next((m for m in models if m.get("id") == self.model), None)
        if ours is None:
            logger.warning(f"{endpoint} does not list model {self.model!r} (it lists "
                           f"{', '.join(self.served_models) or 'none'}); requests may be refused")
            return None
        return ours["max_model_len"] if isinstance(ours.get("max_model_len"), int) else None

    async def _send(self, session: aiohttp.ClientSession, endpoint: str | None, method: str, path: str,
                    body: bytes | None) -> _Reply:
        """The reply to one request, retrying the server's transient failures; EngineError when they persist.
        `endpoint` None: each attempt goes to the endpoint with the fewest of this engine's requests in
        flight, another than the one that just failed when there is another."""
        last = ""
        hung_up = False
        attempt = 0
        failed = None
        while True:
            retry_after = None
            target = endpoint or min([e for e in self.endpoints if e != failed] or self.endpoints,
                                     key=self._in_flight.__getitem__)
            self._in_flight[target] += 1
            try:
                reply, retry_after = await self._exchange(session, target + path, method, body)
            except aiohttp.ServerDisconnectedError as error:
                if not hung_up:  # likely a keep-alive connection the server closed while idle
                    hung_up = True
                    continue
                last = _describe(error)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                last = _describe(error, self.timeout)
            else:
                if reply.status not in RETRIED_STATUSES and (reply.status < 500 or reply.status in NOT_IMPLEMENTED):
                    return reply
                last = f"HTTP {reply.status}: {message_of(reply.body) or 'no message'}"
            finally:
                self._in_flight[target] -= 1
            failed = target
            if attempt == self.retries:
                break
            delay = min(MAX_BACKOFF_S, max(self.backoff * 2**attempt, retry_after or 0.0))
            delay *= 1 + 0.1 * random.random()
            attempt += 1
            logger.warning(f"{target}{path}: {last}; retry {attempt} of {self.retries} in {delay:.1f} s")
            await asyncio.sleep(delay)
        raise EngineError(f"{target}{path} failed {attempt + 1} times; last error: {last}")

    async def _exchange(self, session: aiohttp.ClientSession, url: str, method: str,
                        body: bytes | None) -> tuple[_Reply, float | None]:
        """One request: (reply, Retry-After seconds)."""
        async with session.request(method, url, data=body, allow_redirects=False) as response:
            data = await response.read()
            return _Reply(response.status, data, response.headers.get("Location")), _seconds(
                response.headers.get("Retry-After"))


def _scores(choice: dict, tokens: tuple[int, ...]) -> tuple[float, ...] | None:
    """The log-probabilities of `tokens` at the first generated position, or None from a server that
    does not give them (not vLLM, or a vLLM older than its logprob_token_ids field)."""
    try:
        first = choice["logprobs"]["top_logprobs"][0]
        return tuple(float(first[f"token_id:{token}"]) for token in tokens)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def base_url(endpoint: str) -> str:
    """`host:8000`, `http://host:8000/`, `http://host:8000/v1`: all `http://host:8000`."""
    endpoint = endpoint.strip()
    parts = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"endpoint must be an http(s) URL like http://host:8000, not {endpoint!r}")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path[: -len('/v1')] if path.endswith('/v1') else path}"


def _describe(error: BaseException, timeout: float | None = None) -> str:
    """`ConnectionRefusedError: ...` for a refused connection (the OS error under aiohttp's), a timeout
    in words, else the error's type and message."""
    if isinstance(error, asyncio.TimeoutError):
        return f"TimeoutError: timed out after {timeout} s"
    error = getattr(error, "os_error", None) or error
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def message_of(body: bytes) -> str:
    """The message of an error body: OpenAI's and vLLM's `{"error": {"message": ...}}`, vLLM's older
    `{"message": ...}`, FastAPI's `{"detail": ...}`, or the text itself; shortened."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return shorten(body.decode("utf-8", errors="replace"))
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            data = error.get("message") or error.get("detail") or error
        else:
            data = error
    return shorten(data if isinstance(data, str) else orjson.dumps(data).decode())


def shorten(text: str) -> str:
    return textwrap.shorten(text, MESSAGE_CHARS, placeholder=" ...") if text.strip() else ""


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: the backoff applies
        return None

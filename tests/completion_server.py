"""A completions (and chat completions) server on localhost that answers as each test chooses: the environment the HTTP
engine meets in the wild (slow, failing, hanging up), written here so that tests can make it
misbehave on purpose."""

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson


class Listener(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # clients connect all at once

    def handle_error(self, request, client_address):
        pass  # a client that gave up on a slow answer


class FakeServer:
    """Completions on localhost. `answer(key, attempt)` says how to answer the attempt-th request for a
    prompt: "ok" (the text `reply_text(KEY)`, by default `echo KEY`), ("status", code, body), "close" (hang
    up), or ("sleep", seconds). `read_ids`: how a prompt of token ids becomes its KEY (default: the ids
    joined by "-"); a server that plays a model decodes them, as a model server reads its prompt."""

    def __init__(self, answer=lambda key, attempt: "ok", models=None, reply_text=lambda key: f"  echo {key} ",
                 read_ids=None):
        self.answer, self.models, self.reply_text = answer, models, reply_text
        self.read_ids = read_ids or prompt_key
        self.attempts: Counter = Counter()
        self.payloads: list[dict] = []
        self.clients: set = set()
        self.authorizations: list = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self):  # noqa: N802
                fake.authorizations.append(self.headers.get("Authorization"))
                if fake.models is None:
                    return self.reply(404, {"error": {"message": "no such route"}})
                if isinstance(fake.models, int):
                    return self.reply(fake.models, {"error": {"message": "Incorrect API key provided"}})
                self.reply(200, {"object": "list", "data": fake.models})

            def do_POST(self):  # noqa: N802
                payload = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                chat = "messages" in payload  # a chat request's KEY is its last message's content
                prompt = payload["messages"][-1]["content"] if chat else payload["prompt"]
                key = prompt if isinstance(prompt, str) else fake.read_ids(prompt)
                with fake.lock:
                    fake.attempts[key] += 1
                    attempt = fake.attempts[key]
                    fake.payloads.append(payload)
                    fake.clients.add(self.client_address)
                    fake.authorizations.append(self.headers.get("Authorization"))
                action = fake.answer(key, attempt)
                if action == "close":
                    self.close_connection = True
                    return
                if isinstance(action, tuple) and action[0] == "sleep":
                    time.sleep(action[1])
                elif isinstance(action, tuple):
                    return self.reply(action[1], action[2])
                choice = {"message": {"role": "assistant", "content": fake.reply_text(key)}} if chat else {
                    "text": fake.reply_text(key)}
                self.reply(200, {"choices": [{"index": 0, "finish_reason": "stop"} | choice],
                                 "usage": {"prompt_tokens": 7, "completion_tokens": 3}})

            def reply(self, status, body):
                data = body if isinstance(body, bytes) else orjson.dumps(body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = Listener(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def prompt_key(prompt) -> str:
    return prompt if isinstance(prompt, str) else "-".join(map(str, prompt))

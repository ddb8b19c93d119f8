"""Chunking speed: prox's batched line counting against one tokenizer call per line (the reference's way).

Both produce the same chunk prompts for every document (checked). Prints documents per second, the
ratio, and how the batched path scales with tokenizer threads, and writes bench-out/chunking.json.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_report import machine, save  # noqa: E402
from reference_style import reference_chunk_prompts  # noqa: E402

from prox.engines import BUNDLED_TOKENIZER  # noqa: E402

TOKENIZER = BUNDLED_TOKENIZER  # the published refiners' tokenizer, shipped with prox
CORPUS = ROOT.parent / "shared" / "corpus"


def documents() -> list[str]:
    """The bundled samples, plus the shared corpus when it is beside the project."""
    texts = [json.loads(line)["text"] for line in (ROOT / "samples" / "cc-programs.jsonl").read_text().splitlines()]
    for name in ("dclm-labeled-281.jsonl.gz", "cc-raw-10.jsonl.gz"):
        if (CORPUS / name).exists():
            texts += [json.loads(line)["text"] for line in gzip.open(CORPUS / name, "rt")]
    return texts


def best_of(repeats: int, function) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(repeats: int = 5) -> dict:
    from transformers import AutoTokenizer

    from prox.pipeline.generate_programs import chunk_prompts_of
    from prox.prompts import PromptBuilder, load_prompts

    tokenizer = AutoTokenizer.from_pretrained(TOKENIZER)
    builder = PromptBuilder(load_prompts("web"), tokenizer)
    texts = documents()

    class Doc:  # the step works on datatrove documents; only `text` is read
        def __init__(self, text: str):
            self.text = text

    docs = [Doc(t) for t in texts if t]
    reference_seconds, reference = best_of(repeats, lambda: [reference_chunk_prompts(d.text, tokenizer) for d in docs])
    prox_seconds, ours = best_of(repeats, lambda: [[p.text for p in c] for c in chunk_prompts_of(builder, docs)])
    if ours != reference:
        raise SystemExit("chunk prompts differ from the reference's")
    return {"documents": len(docs), "lines": sum(t.count("\n") + 1 for t in texts),
            "chunks": sum(map(len, ours)), "reference_docs_per_s": len(docs) / reference_seconds,
            "prox_docs_per_s": len(docs) / prox_seconds, "ratio": reference_seconds / prox_seconds}


def main() -> None:
    if os.environ.get("PROX_BENCH_CHILD"):
        print(json.dumps(measure()))
        return
    runs = {}
    for threads in sorted({1, os.cpu_count() or 1}):
        env = os.environ | {"PROX_BENCH_CHILD": "1", "RAYON_NUM_THREADS": str(threads),
                            "TOKENIZERS_PARALLELISM": "true"}
        output = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, check=True)
        runs[threads] = json.loads(output.stdout.strip().splitlines()[-1])
    first = next(iter(runs.values()))
    print(f"chunking {first['documents']} real documents ({first['lines']} lines, {first['chunks']} chunks) "
          f"on {machine()}")
    print(f"{'tokenizer threads':<20}{'reference docs/s':>18}{'prox docs/s':>14}{'ratio':>8}")
    for threads, run in runs.items():
        print(f"{threads:<20}{run['reference_docs_per_s']:>18.1f}{run['prox_docs_per_s']:>14.1f}{run['ratio']:>7.1f}x")
    save("chunking", {"runs": runs})


if __name__ == "__main__":
    main()

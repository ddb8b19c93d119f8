"""The rules engine against human judgement, and its speed.

Runs the rules engine's doc stage on samples/dclm-labeled-281.jsonl.gz (281 real web documents that
people labelled keep or discard, from DCLM) and reports how its `drop_doc()` agrees with a discard
label: precision, recall, accuracy, and which rule dropped what. Then documents per second of both
stages on one core (best of REPEATS): the doc stage on every document, the chunk stage on every
chunk of every document (chunk prompts are built once beforehand, with the bundled tokenizer, and
timed apart). Prints a summary and writes bench-out/rules_agreement.json.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from collections import Counter
from pathlib import Path

from bench_report import machine, save

from prox.engines import BUNDLED_TOKENIZER, GenerationSettings, Prompt, load_tokenizer
from prox.engines.rules_engine import RulesEngine
from prox.language import DropDoc, parse_program
from prox.prompts import PromptBuilder, load_prompts

ROOT = Path(__file__).parents[1]
LABELLED = ROOT / "samples" / "dclm-labeled-281.jsonl.gz"
REPEATS = 5
SETTINGS = GenerationSettings(max_new_tokens=256)


def agreement(programs: list[str], labels: list[int]) -> dict:
    """How `drop_doc()` agrees with label 0 (discard)."""
    drops = [any(isinstance(op, DropDoc) for op in parse_program(p, "doc").operations) for p in programs]
    both = sum(d and label == 0 for d, label in zip(drops, labels, strict=True))
    dropped, discard = sum(drops), labels.count(0)
    correct = sum(d == (label == 0) for d, label in zip(drops, labels, strict=True))
    by_rule = Counter((p.split("# ", 1)[1].split(":", 1)[0], label) for p, d, label
                      in zip(programs, drops, labels, strict=True) if d)
    return {"documents": len(labels), "labelled_discard": discard, "dropped": dropped, "dropped_and_discard": both,
            "precision": both / dropped if dropped else 0.0, "recall": both / discard if discard else 0.0,
            "accuracy": correct / len(labels),
            "drops_by_rule": {rule: {"discard": by_rule[(rule, 0)], "keep": by_rule[(rule, 1)]}
                              for rule in sorted({rule for rule, _ in by_rule})}}


def best_seconds(function) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> int:
    rows = [json.loads(line) for line in gzip.open(LABELLED, "rt")]
    texts, labels = [row["text"] for row in rows], [row["label"] for row in rows]
    doc_engine, chunk_engine = RulesEngine("doc"), RulesEngine("chunk")
    doc_prompts = [Prompt(subject=text) for text in texts]
    figures = agreement([c.text for c in doc_engine.generate(doc_prompts, SETTINGS)], labels)

    builder = PromptBuilder(load_prompts("web"), load_tokenizer(BUNDLED_TOKENIZER))
    start = time.perf_counter()
    chunk_prompts = [Prompt(text=c.text, subject=c.chunk) for text in texts for c in builder.chunk_prompts(text)]
    chunking_seconds = time.perf_counter() - start
    doc_seconds = best_seconds(lambda: doc_engine.generate(doc_prompts, SETTINGS))
    chunk_seconds = best_seconds(lambda: chunk_engine.generate(chunk_prompts, SETTINGS))
    figures |= {"chunks": len(chunk_prompts), "doc_stage_docs_per_s": len(texts) / doc_seconds,
                "chunk_stage_docs_per_s": len(texts) / chunk_seconds,
                "chunk_stage_chunks_per_s": len(chunk_prompts) / chunk_seconds,
                "chunk_prompt_building_docs_per_s": len(texts) / chunking_seconds, "repeats": REPEATS}

    print(f"rules engine, doc stage, on {figures['documents']} human-labelled documents "
          f"({figures['labelled_discard']} labelled discard)")
    print(f"  dropped {figures['dropped']}, of which {figures['dropped_and_discard']} labelled discard")
    print(f"  drop vs discard: precision {figures['precision']:.3f}, recall {figures['recall']:.3f}; "
          f"accuracy {figures['accuracy']:.3f}")
    for rule, counts in figures["drops_by_rule"].items():
        print(f"    {rule:30s} {counts['discard']:3d} discard, {counts['keep']:3d} keep")
    print(f"machine: {machine()}; best of {REPEATS}, single process")
    print(f"  doc stage   {figures['doc_stage_docs_per_s']:8.0f} docs/s")
    print(f"  chunk stage {figures['chunk_stage_docs_per_s']:8.0f} docs/s ({figures['chunks']} chunks, "
          f"{figures['chunk_stage_chunks_per_s']:.0f} chunks/s; building the chunk prompts: "
          f"{figures['chunk_prompt_building_docs_per_s']:.0f} docs/s)")
    save("rules_agreement", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

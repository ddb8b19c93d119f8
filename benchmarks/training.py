"""A refiner trained on the rules teacher's annotations, with and without key-token weighting.

Annotates samples/dclm-labeled-281.jsonl.gz (281 real web pages) with `prox annotate --teacher rules`
(doc stage, 30% held out), builds a small random Llama with the published refiners' tokenizer, fine-tunes it on the
CPU for STEPS steps twice from the same weights and seed (key-token weight 1, then KEY_WEIGHT), and
scores each on the held-out split with prox eval's measures, beside always-keep. Prints a summary
and writes bench-out/training_cpu.json. CPU only: a GPU run would use a model of the published
refiners' shape (24 layers, hidden 1280), which this machine cannot train in minutes.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_report import machine, save

from prox.engines import BUNDLED_TOKENIZER, EngineSpec
from prox.evaluation.metrics import DocScore
from prox.evaluation.programs import model_programs
from prox.training.examples import split_rows
from prox.training.fine_tune import TrainSettings, fine_tune

ROOT = Path(__file__).parents[1]
LABELLED = ROOT / "samples" / "dclm-labeled-281.jsonl.gz"
STEPS = 160
KEY_WEIGHT = 3.0
VALIDATION_SHARE = 0.3  # of 281 documents: enough held out to tell the runs apart


def small_llama(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER).save_pretrained(folder)
    return folder


def score(rows: list[dict], programs: list[str | None]) -> dict:
    doc = DocScore()
    for row, program in zip(rows, programs, strict=True):
        doc.add(row["label"], program)
    report = doc.report()
    return {k: report[k] for k in ("f1", "accuracy", "kept_ratio", "failures")} | {
        "keep_f1": report["keep"]["f1"], "drop_f1": report["drop"]["f1"]}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="prox-bench-training-"))
    documents = work / "documents.jsonl"
    with gzip.open(LABELLED, "rt") as file:
        rows = [json.loads(line) for line in file]
    documents.write_text("".join(json.dumps({"id": f"dclm-{i}", "text": r["text"]}) + "\n"
                                 for i, r in enumerate(rows)))
    data = work / "data"
    tick = time.perf_counter()
    subprocess.run([sys.executable, "-m", "prox", "annotate", "--teacher", "rules", "--stage", "doc", "-i",
                    str(documents), "-o", str(data), "--validation-share", str(VALIDATION_SHARE)],
                   check=True, capture_output=True)
    annotate_s = time.perf_counter() - tick
    stats = json.loads((data / "stats.json").read_text())
    validation = split_rows(data, "doc", "validation")
    base = small_llama(work / "base")
    figures = {"machine": machine(), "documents": len(rows), "annotate_s": round(annotate_s, 1),
               "train_examples": stats["train"], "validation_examples": len(validation),
               "labels": {"keep": stats["keep"], "drop": stats["drop"]}, "steps": STEPS,
               "always_keep": score(validation, ["keep_doc()"] * len(validation))}
    for weight in (1.0, KEY_WEIGHT):
        output = work / f"trained-w{weight:g}"
        settings = TrainSettings(str(data), str(base), str(output), "doc", batch_size=8, micro_batch_size=4,
                                 learning_rate=3e-3, max_steps=STEPS, key_token_weight=weight, logging_steps=20)
        run = fine_tune(settings, log=lambda _: None)
        tick = time.perf_counter()
        programs = model_programs(validation, EngineSpec("transformers", str(output), {"dtype": "float32"}), 16)
        figures[f"key_token_weight_{weight:g}"] = score(validation, programs) | {
            "train_s": round(run["seconds"], 1), "train_loss": round(run["train_loss"], 3),
            "eval_s": round(time.perf_counter() - tick, 1)}
    save("training_cpu", figures)
    print(f"\n{figures['machine']}")
    print(f"annotated {len(rows)} documents with the rules teacher in {annotate_s:.1f} s: "
          f"{stats['train']} train / {len(validation)} validation examples, labels {figures['labels']}")
    print(f"{'doc refiner (validation)':<34}{'F1':>7}{'keep F1':>9}{'drop F1':>9}{'accuracy':>10}  failures")
    for name in ("always_keep", "key_token_weight_1", f"key_token_weight_{KEY_WEIGHT:g}"):
        f = figures[name]
        print(f"{name:<34}{f['f1']:>7.1f}{f['keep_f1']:>9.1f}{f['drop_f1']:>9.1f}{f['accuracy']:>10.1f}  "
              f"{f['failures'] or 'none'}")


if __name__ == "__main__":
    main()

"""CPU per document of everything in `prox refine` but generation, part by part, and what it means
for a GPU: the cores that keep one busy.

Real web text (the bundled DCLM and Common Crawl documents, repeated with new ids up to DOCUMENTS,
in parquet shards) goes through prox's own steps in this process: the reader, both stages' prompts
(in the pipeline's batches), execution of programs in the chunk model's style (benchmarks/
interpreter.py), and the writer. CPU time is the process's (user and system, all threads: the Rust
tokenizer runs several). Each line is tokenized once, with the doc stage's prompts (as the pipeline
does), and the chunk-stage prompts are put together from the lines' ids; a prompt that cannot be
goes as text, for the engine to tokenize (in a vLLM server's process when prox starts one): that
part is reported on its own line. The tokenizer runs on one thread, as in each process of `--workers N`
(prox turns its threads off there: the processes use the cores); the doc stage is measured again
with its threads on, as one process runs, on a line of its own. The GPU's side is the
H100 figures of ../shared/gpu/README.md (bare LLM.generate, a refiner-shaped model): 866 doc-stage
prompts/s and 425 chunk-stage prompts/s. Writes bench-out/cpu_per_document.json.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from bench_report import machine, save
from bundled_samples import dclm_texts, web_texts
from interpreter import SEED, sample_program

from prox.engines import BUNDLED_TOKENIZER, load_tokenizer
from prox.engines.models import encode_texts
from prox.execution import Policy
from prox.pipeline import ApplyPrograms, ShardReader, ShardWriter
from prox.pipeline.generate_programs import chunk_prompts_of
from prox.pipeline.shards import OutputLayout, ShardEnd
from prox.prompts import PromptBuilder, load_prompts

DOCUMENTS = 5000
SHARDS = 4
BATCH = 256  # documents per generation batch, as `prox refine` defaults
H100_DOCS_PER_S, H100_CHUNKS_PER_S = 866, 425
GOAL_MS = 1.5
THREADED = "doc-stage prompts, tokenizer threads on"  # not part of the sum: an alternative to the doc stage


def documents() -> list[dict]:
    texts = [t for t in dclm_texts() + web_texts() if t.strip()]
    return [{"id": f"doc-{i}", "text": texts[i % len(texts)]} for i in range(DOCUMENTS)]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Parts:
    """CPU and wall seconds of each named part."""

    def __init__(self):
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}

    @contextlib.contextmanager
    def measure(self, name: str):
        cpu, wall = cpu_seconds(), time.perf_counter()
        yield
        self.cpu[name] = cpu_seconds() - cpu
        self.wall[name] = time.perf_counter() - wall


def main() -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # read by the tokenizer at each call
    rows = documents()
    parts = Parts()
    with tempfile.TemporaryDirectory() as scratch:
        source, out = Path(scratch) / "input", str(Path(scratch) / "out")
        source.mkdir()
        for i in range(SHARDS):
            pq.write_table(pa.Table.from_pylist(rows[i::SHARDS]), source / f"shard-{i}.parquet")
        shards = sorted(p.name for p in source.iterdir())
        OutputLayout(out).record_names(shards)
        builder = PromptBuilder(load_prompts("web"), load_tokenizer(BUNDLED_TOKENIZER))
        builder.doc_prompt_ids(["warm-up"])

        with parts.measure("reading"):
            stream = list(ShardReader(str(source), out, shards).run())
        docs = [d for d in stream if not isinstance(d, ShardEnd)]
        batches = [docs[i : i + BATCH] for i in range(0, len(docs), BATCH)]
        with parts.measure("doc-stage prompts (lines tokenized)"):
            lines = [builder.document_lines([d.text for d in batch]) for batch in batches]
            doc_tokens = sum(len(ids) for batch, batch_lines in zip(batches, lines, strict=True)
                             for ids in builder.doc_prompt_ids([d.text for d in batch], batch_lines))
        with parts.measure("chunk-stage prompts"):
            chunk_prompts = [[p for prompts in chunk_prompts_of(builder, batch, batch_lines) for p in prompts]
                             for batch, batch_lines in zip(batches, lines, strict=True)]
        rng = random.Random(SEED)
        for document in docs:  # what the two stages leave in the metadata
            document.metadata["doc_program"] = "keep_doc()"
            document.metadata["chunk_program"] = sample_program(document.text, rng)
        with parts.measure("execution"):
            applied = list(ApplyPrograms(Policy()).run(iter(stream)))
        with parts.measure("writing"):
            for _ in ShardWriter(out).run(iter(applied)):
                pass
        os.environ["TOKENIZERS_PARALLELISM"] = "true"
        with parts.measure(THREADED):
            for batch in batches:
                builder.doc_prompt_ids([d.text for d in batch], builder.document_lines([d.text for d in batch]))
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        with parts.measure("chunk prompts tokenized (by the engine)"):  # those not put together from lines
            chunk_tokens = sum(len(p.ids) for prompts in chunk_prompts for p in prompts if p.ids is not None)
            texts = [p.text for prompts in chunk_prompts for p in prompts if p.ids is None]
            chunk_tokens += sum(len(ids) for ids in encode_texts(builder.tokenizer, texts, special_tokens=True))

    chunks = sum(len(prompts) for prompts in chunk_prompts)
    per_doc_ms = {name: round(1000 * seconds / len(docs), 3) for name, seconds in parts.cpu.items()}
    engine_part = "chunk prompts tokenized (by the engine)"
    pipeline_ms = sum(ms for name, ms in per_doc_ms.items() if name not in (engine_part, THREADED))
    gpu_ms = 1000 / H100_DOCS_PER_S + (chunks / len(docs)) * 1000 / H100_CHUNKS_PER_S
    figures = {
        "documents": len(docs), "chunks": chunks, "doc_prompt_tokens": doc_tokens, "chunk_prompt_tokens": chunk_tokens,
        "cpu_ms_per_document": per_doc_ms,
        "wall_ms_per_document": {name: round(1000 * s / len(docs), 3) for name, s in parts.wall.items()},
        "pipeline_cpu_ms_per_document": round(pipeline_ms, 3), "goal_ms": GOAL_MS,
        "documents_per_s_per_core": round(1000 / pipeline_ms),
        "h100_gpu_ms_per_document": round(gpu_ms, 3),
        "cores_per_h100": round(pipeline_ms / gpu_ms, 2),
        "cores_per_h100_with_engine_tokenization": round((pipeline_ms + per_doc_ms[engine_part]) / gpu_ms, 2),
    }
    print(f"machine: {machine()}")
    print(f"{len(docs)} documents ({chunks} chunks) of real web text; CPU ms per document (all threads):")
    for name, ms in per_doc_ms.items():
        print(f"  {name:<42}{ms:>8.3f}")
    print(f"  {'pipeline, all but generation':<42}{pipeline_ms:>8.3f}   (goal {GOAL_MS}; "
          f"{figures['documents_per_s_per_core']} documents/s per core)")
    print(f"an H100 serves a document in {gpu_ms:.2f} ms (both stages, bare LLM.generate): "
          f"{figures['cores_per_h100']} cores keep it busy, "
          f"{figures['cores_per_h100_with_engine_tokenization']} with the engine's tokenization")
    save("cpu_per_document", figures)


if __name__ == "__main__":
    main()

"""Where the programs scored by prox eval come from: a model asked for each annotated prompt now,
or the programs a finished refine run stored."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from prox.engines import EngineSpec, GenerationSettings, Prompt
from prox.pipeline.shards import OutputLayout


def model_programs(rows: list[dict], spec: EngineSpec, max_new_tokens: int) -> list[str | None]:
    """The model's program for each row's prompt (sent as its stored ids, as refine sends them);
    None where the engine could not serve the prompt."""
    engine = spec.create()
    completions = engine.generate([Prompt(ids=tuple(row["prompt_token_ids"])) for row in rows],
                                  GenerationSettings(max_new_tokens))
    return [None if completion.error else completion.text for completion in completions]


def run_programs(output: str | Path) -> dict[str, dict]:
    """A finished run's programs by document id: {"doc": doc_program, "chunk": chunk_program}.
    ValueError for a folder that is not a run's output."""
    found: dict[str, dict] = {}
    for path in (Path(output) / name for name in OutputLayout(str(output)).document_files()):
        if not {"id", "metadata"} <= set(pq.read_schema(path).names):
            raise ValueError(f"{path} has no id and metadata columns: is {output} the output of prox refine?")
        table = pq.read_table(path, columns=["id", "metadata"])
        for row in table.to_pylist():
            metadata = row["metadata"] or {}
            found[row["id"]] = {"doc": metadata.get("doc_program"), "chunk": metadata.get("chunk_program")}
    return found

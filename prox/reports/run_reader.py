"""Reads what a report needs from a run's output folder without loading the corpus: the statistics,
per-document figures from a few metadata columns (one row group at a time), and a fixed-seed sample
of whole documents."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import orjson
import pyarrow.parquet as pq
from datatrove.io import DataFolder, get_datafolder

from prox.pipeline.output_names import EXCLUDED_DIR
from prox.pipeline.shards import OutputLayout

_FIGURE_COLUMNS = ["metadata.prox_action", "metadata.prox_words_before", "metadata.prox_words_after",
                   "metadata.prox_operations", "metadata.prox_diagnostic_details"]


@dataclass
class RunFigures:
    """Per-document figures of a whole run, as counts (their size does not grow with the run)."""

    removed_shares: Counter = field(default_factory=Counter)  # documents by 5% of words removed (0..20)
    operations: Counter = field(default_factory=Counter)  # documents by operations applied
    failures: Counter = field(default_factory=Counter)  # (stage, category) -> diagnostics


def output_files(folder: DataFolder) -> list[str]:
    """The run's document files (with prox's id and metadata columns): kept and modified ones, then
    the excluded."""
    files = []
    for name in OutputLayout(folder).document_files():
        with folder.open(name, "rb") as file:
            if {"id", "metadata"} <= set(pq.read_schema(file).names):
                files.append(name)
    return sorted(files, key=lambda f: (f.startswith(EXCLUDED_DIR + "/"), f))


def read_stats(output: str) -> dict:
    folder = get_datafolder(output)
    if not folder.isfile("stats.json"):
        raise FileNotFoundError(f"{output} has no stats.json: is it the output of prox refine or prox apply?")
    with folder.open("stats.json", "rb") as file:
        return orjson.loads(file.read())


def run_figures(output: str) -> RunFigures:
    """The per-document figures, from a handful of metadata columns read one row group at a time."""
    folder = get_datafolder(output)
    figures = RunFigures()
    for name in output_files(folder):
        with folder.open(name, "rb") as file, pq.ParquetFile(file) as parquet:
            present = {f.name for f in parquet.schema_arrow.field("metadata").type}
            columns = [c for c in _FIGURE_COLUMNS if c.split(".")[1] in present]
            if not columns:
                continue
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=columns)
                for row in table.column("metadata").to_pylist():
                    _add(figures, row)
    return figures


def _add(figures: RunFigures, row: dict) -> None:
    before, after = row.get("prox_words_before") or 0, row.get("prox_words_after") or 0
    if row.get("prox_action") == "dropped":
        figures.removed_shares[20] += 1
    elif before:
        figures.removed_shares[min(20, int(20 * max(0.0, 1 - after / before)))] += 1
    figures.operations[len(row.get("prox_operations") or [])] += 1
    for detail in row.get("prox_diagnostic_details") or []:
        figures.failures[(detail["level"] or "?", detail["category"])] += 1


def sample_documents(output: str, count: int, seed: int = 0, row_groups: int | None = None) -> list[dict]:
    """`count` documents chosen with a fixed seed, whole (id, text, metadata), in the run's order;
    only the row groups that hold them are read, and at most `row_groups` of them when given."""
    folder = get_datafolder(output)
    files = output_files(folder)
    groups = []  # (file, row group, rows)
    for name in files:
        with folder.open(name, "rb") as file, pq.ParquetFile(file) as parquet:
            groups += [(name, g, parquet.metadata.row_group(g).num_rows) for g in range(parquet.num_row_groups)]
    if row_groups is not None and len(groups) > row_groups:
        groups = sorted(random.Random(seed).sample(groups, row_groups), key=groups.index)
    total = sum(rows for _, _, rows in groups)
    wanted = iter(sorted(random.Random(seed).sample(range(total), min(count, total))))
    documents, start = [], 0
    position = next(wanted, None)
    for name, group, rows in groups:
        picked = []
        while position is not None and position < start + rows:
            picked.append(position - start)
            position = next(wanted, None)
        if picked:
            with folder.open(name, "rb") as file, pq.ParquetFile(file) as parquet:
                table = parquet.read_row_group(group, columns=["id", "text", "metadata"])
            documents += [table.slice(i, 1).to_pylist()[0] for i in picked]
        start += rows
    return documents


def document_outcomes(output: str) -> dict[str, tuple[str, int]]:
    """Each document's action and words kept, by id (two small columns of every file)."""
    folder = get_datafolder(output)
    outcomes = {}
    for name in output_files(folder):
        with folder.open(name, "rb") as file, pq.ParquetFile(file) as parquet:
            for group in range(parquet.num_row_groups):
                table = parquet.read_row_group(group, columns=["id", "metadata.prox_action",
                                                               "metadata.prox_words_after"])
                for doc_id, metadata in zip(table.column("id").to_pylist(), table.column("metadata").to_pylist(),
                                            strict=True):
                    action = metadata.get("prox_action") or "?"
                    outcomes[doc_id] = (action, 0 if action == "dropped" else metadata.get("prox_words_after") or 0)
    return outcomes


def documents_by_id(output: str, ids: set[str]) -> dict[str, dict]:
    """The documents of `ids`, whole; only the row groups that hold them are read."""
    folder = get_datafolder(output)
    found = {}
    for name in output_files(folder):
        with folder.open(name, "rb") as file, pq.ParquetFile(file) as parquet:
            for group in range(parquet.num_row_groups):
                group_ids = parquet.read_row_group(group, columns=["id"]).column("id").to_pylist()
                rows = [i for i, doc_id in enumerate(group_ids) if doc_id in ids]
                if rows:
                    table = parquet.read_row_group(group, columns=["id", "text", "metadata"])
                    found.update({group_ids[i]: table.slice(i, 1).to_pylist()[0] for i in rows})
    return found

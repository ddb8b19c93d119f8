"""Reconciles an output with its input: every input row in exactly one place, and stats.json true.

Rows are matched by where they came from (`prox_shard`, `prox_row`), not by id alone, because ids
may repeat in the input; the id is then checked too. This reads the whole input again, so it costs
a pass over the data; it is what tests and careful users run after a job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from prox.pipeline.reader import ShardReader, input_folder_and_files
from prox.pipeline.shards import EXCLUDED_DIR, LOGS_DIR, PROMPTS_DIR, OutputLayout
from prox.pipeline.stats import merge_summaries

ACTIONS = ("kept", "modified", "dropped")
_LISTED = 20  # problems listed per kind; the counts are always complete


@dataclass
class Reconciliation:
    input_rows: int = 0
    output_rows: int = 0
    missing: list[str] = field(default_factory=list)  # "shard row N (id X)": in the input, in no output
    duplicated: list[str] = field(default_factory=list)  # in more than one output row
    unexplained: list[str] = field(default_factory=list)  # output rows that no input row accounts for
    misplaced: list[str] = field(default_factory=list)  # wrong id, or an action in the wrong folder
    stats_disagree: list[str] = field(default_factory=list)  # stats.json against the files
    unfinished_shards: list[str] = field(default_factory=list)  # failed or pending shards
    counts: dict = field(default_factory=dict)  # missing, duplicated, ... in full

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())


def reconcile(input_path: str, output_path: str, text_key: str = "text", id_key: str = "id") -> Reconciliation:
    layout = OutputLayout(output_path)
    folder, shards = input_folder_and_files(input_path)
    reader = ShardReader(input_path, output_path, text_key=text_key, id_key=id_key)
    expected: dict[tuple[str, int], str] = {}
    unreadable = []
    for shard in shards:
        try:
            for document in reader.documents_of(folder, shard):
                expected[(shard, document.metadata["prox_row"])] = document.id
        except Exception as error:  # the run will have named it too; its rows cannot be checked
            unreadable.append(f"{shard}: cannot read the input: {error}")

    seen: Counter = Counter()
    actions: Counter = Counter()
    result = Reconciliation(input_rows=len(expected))
    problems: dict[str, list[str]] = {"unexplained": [], "misplaced": []}
    for name in _output_files(layout):
        excluded = name.startswith(f"{EXCLUDED_DIR}/")
        columns = ["id", "metadata.prox_shard", "metadata.prox_row", "metadata.prox_action"]
        with layout.folder.open(name, "rb") as file:
            table = pq.ParquetFile(file).read(columns=columns, use_threads=False).flatten()
        for doc_id, shard, row, action in zip(*(table.column(c).to_pylist() for c in columns), strict=True):
            result.output_rows += 1
            actions[action] += 1
            key = (shard, row)
            where = f"{name} (id {doc_id})"
            if key not in expected:
                problems["unexplained"].append(f"{where}: shard {shard} row {row} is not in the input")
                continue
            seen[key] += 1
            if expected[key] != doc_id:
                problems["misplaced"].append(f"{where}: shard {shard} row {row} has id {expected[key]} in the input")
            if excluded != (action == "dropped"):
                problems["misplaced"].append(f"{where}: a {action} document in {'excluded/' if excluded else 'OUT'}")

    missing = [f"{s} row {r} (id {i})" for (s, r), i in expected.items() if not seen[(s, r)]]
    duplicated = [f"{s} row {r} (id {expected[(s, r)]}): {n} times" for (s, r), n in seen.items() if n > 1]
    summaries = merge_summaries(layout, shards)
    unfinished = [f"{s}: failed: {e}" for s, e in summaries["failed_shards"].items()]
    unfinished += [f"{s}: not done" for s in summaries["pending_shards"]] + unreadable
    disagree = _stats_disagreements(layout, len(expected), actions)
    for kind, found in (("missing", missing), ("duplicated", duplicated), ("unexplained", problems["unexplained"]),
                        ("misplaced", problems["misplaced"]), ("stats_disagree", disagree),
                        ("unfinished_shards", unfinished)):
        result.counts[kind] = len(found)
        setattr(result, kind, found[:_LISTED])
    return result


def _output_files(layout: OutputLayout) -> list[str]:
    return sorted(f for f in layout.folder.list_files(recursive=True)
                  if f.endswith(".parquet") and f.split("/", 1)[0] not in (LOGS_DIR, PROMPTS_DIR))


def _stats_disagreements(layout: OutputLayout, input_rows: int, actions: Counter) -> list[str]:
    if not layout.folder.isfile("stats.json"):
        return ["no stats.json"]
    stats = layout.read_json("stats.json")
    found = [f"stats.json says {stats.get(a)} {a}, the files hold {actions[a]}" for a in ACTIONS
             if stats.get(a) != actions[a]]
    if stats.get("input") != input_rows:
        found.append(f"stats.json says {stats.get('input')} input documents, the input holds {input_rows}")
    if sum(stats.get(a, 0) for a in ACTIONS) != stats.get("input"):
        found.append("stats.json: kept + modified + dropped is not input")
    return found

"""Reconciles an output with its input: every input row in exactly one place, and stats.json true.

Rows are matched by where they came from (`prox_shard`, `prox_row`), not by id alone, because ids
may repeat in the input; the id is then checked too. The rows of a shard that is not done (failed,
pending, a preview, or a file that cannot be read to the end) are not called missing: the shard is
named once, with why. This reads the whole input again, so it costs a pass over the data; it is
what tests and careful users run after a job.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from prox.pipeline.input_files import list_input
from prox.pipeline.reader import ShardReader
from prox.pipeline.shards import EXCLUDED_DIR, OutputLayout
from prox.pipeline.stats import merge_summaries

ACTIONS = ("kept", "modified", "dropped")
_LISTED = 20  # problems listed per kind; the counts are always complete


@dataclass
class Reconciliation:
    input_rows: int = 0  # rows read from the input (all of them, unless a file cannot be read to the end)
    output_rows: int = 0
    missing: list[str] = field(default_factory=list)  # "shard row N (id X)": of a done shard, in no output
    duplicated: list[str] = field(default_factory=list)  # in more than one output row
    unexplained: list[str] = field(default_factory=list)  # output rows that no input row accounts for
    misplaced: list[str] = field(default_factory=list)  # wrong id, or an action in the wrong folder
    stats_disagree: list[str] = field(default_factory=list)  # stats.json against the files
    unfinished_shards: list[str] = field(default_factory=list)  # one line each: failed, pending, unreadable
    notes: list[str] = field(default_factory=list)  # how the input was listed (symlinks); not problems
    counts: dict = field(default_factory=dict)  # missing, duplicated, ... in full

    @property
    def ok(self) -> bool:
        return not any(self.counts.values())


def reconcile(input_path: str, output_path: str, text_key: str = "text", id_key: str = "id") -> Reconciliation:
    """Rows of done shards must be in the output; a shard not done is one line of `unfinished_shards`
    (its rows are not called missing), and the rows its preview or earlier attempt wrote are checked."""
    layout = OutputLayout(output_path)
    listing = list_input(input_path)
    summaries = merge_summaries(layout, listing.files)
    unfinished = {s: f"{s}: failed: {e}" for s, e in summaries["failed_shards"].items()}
    unfinished |= {s: f"{s}: not done" for s in summaries["pending_shards"]}
    unfinished |= {s: f"{s}: not done: a preview (--limit)" for s in summaries["limited_shards"]}
    reader = ShardReader(input_path, output_path, text_key=text_key, id_key=id_key)
    known: dict[tuple[str, int], str] = {}  # every input row read, to its id
    unreadable = set()
    for shard in listing.files:
        rows = 0
        try:
            for document in reader.documents_of(listing.folder, shard):
                known[(shard, document.metadata["prox_row"])] = document.id
                rows += 1
        except Exception as error:  # the run will have named it too
            unreadable.add(shard)
            unfinished[shard] = f"{shard}: cannot be read to the end: reading stopped at row {rows}: {error}"
    must_be_out = {key for key in known if key[0] not in unfinished}

    seen: Counter = Counter()
    actions: Counter = Counter()
    result = Reconciliation(input_rows=len(known), notes=listing.notes)
    problems: dict[str, list[str]] = {"unexplained": [], "misplaced": []}
    for name in layout.document_files():
        excluded = name.startswith(f"{EXCLUDED_DIR}/")
        columns = ["id", "metadata.prox_shard", "metadata.prox_row", "metadata.prox_action"]
        with layout.folder.open(name, "rb") as file:
            table = pq.ParquetFile(file).read(columns=columns, use_threads=False).flatten()
        for doc_id, shard, row, action in zip(*(table.column(c).to_pylist() for c in columns), strict=True):
            result.output_rows += 1
            actions[action] += 1
            key = (shard, row)
            where = f"{name} (id {doc_id})"
            if key not in known:
                if shard not in unreadable:  # rows past where reading stopped cannot be judged
                    problems["unexplained"].append(f"{where}: shard {shard} row {row} is not in the input")
                continue
            seen[key] += 1
            if known[key] != doc_id:
                problems["misplaced"].append(f"{where}: shard {shard} row {row} has id {known[key]} in the input")
            if excluded != (action == "dropped"):
                problems["misplaced"].append(f"{where}: a {action} document in {'excluded/' if excluded else 'OUT'}")

    missing = [f"{s} row {r} (id {known[(s, r)]})" for s, r in sorted(must_be_out) if not seen[(s, r)]]
    duplicated = [f"{s} row {r} (id {known[(s, r)]}): {n} times" for (s, r), n in seen.items() if n > 1]
    counted_elsewhere = sum(n["input"] for s, n in summaries["per_shard"].items() if s in unfinished)
    disagree = _stats_disagreements(layout, len(must_be_out) + counted_elsewhere, actions)
    for kind, found in (("missing", missing), ("duplicated", duplicated), ("unexplained", problems["unexplained"]),
                        ("misplaced", problems["misplaced"]), ("stats_disagree", disagree),
                        ("unfinished_shards", [unfinished[s] for s in sorted(unfinished)])):
        result.counts[kind] = len(found)
        setattr(result, kind, found[:_LISTED])
    return result


def _stats_disagreements(layout: OutputLayout, input_rows: int, actions: Counter) -> list[str]:
    if not layout.folder.isfile("stats.json"):
        return ["no stats.json"]
    stats = layout.read_json("stats.json")
    found = [f"stats.json says {stats.get(a)} {a}, the files hold {actions[a]}" for a in ACTIONS
             if stats.get(a) != actions[a]]
    if stats.get("input") != input_rows:
        found.append(f"stats.json says {stats.get('input')} input documents, the input holds {input_rows} "
                     "in the shards it counts")
    if sum(stats.get(a, 0) for a in ACTIONS) != stats.get("input"):
        found.append("stats.json: kept + modified + dropped is not input")
    return found

"""Run statistics: a summary per shard (the step below) and their merge into OUT/stats.json.

input = kept + modified + dropped holds for every shard summary, and so for the merge; the
stats step checks it for each shard before marking the shard done.
"""

from __future__ import annotations

from collections import Counter

from datatrove.data import DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from prox.language import Category
from prox.pipeline.shards import OutputLayout, ShardEnd

ACTIONS = ("kept", "modified", "dropped")
NUMBERS = ("input", *ACTIONS, "errors", "words_before", "words_after")
# the doc model's probabilities of dropping, counted in tenths: "0.0-0.1", ..., "0.9-1.0" (1.0 in the last)
PROBABILITY_BINS = tuple(f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10))


class Tally:
    """Counts of outcomes, from documents (a shard) or from shard summaries (a run)."""

    def __init__(self):
        self.numbers: Counter = Counter()
        self.reasons: Counter = Counter()
        self.dropped_by_reason: Counter = Counter()
        self.diagnostics: Counter = Counter({c.value: 0 for c in Category})
        self.drop_probabilities: Counter = Counter()

    def add(self, metadata: dict) -> None:
        """Counts one document from its record."""
        action = metadata["prox_action"]
        self.numbers.update({"input": 1, action: 1, "errors": metadata.get("prox_errors") or 0,
                             "words_before": metadata.get("prox_words_before") or 0})
        if action != "dropped":
            self.numbers["words_after"] += metadata.get("prox_words_after") or 0
        else:
            self.dropped_by_reason[metadata["prox_reason"]] += 1
        self.reasons[metadata["prox_reason"]] += 1
        self.diagnostics.update({k: v for k, v in metadata["prox_diagnostics"].items() if v})
        if (probability := metadata.get("doc_drop_probability")) is not None:
            self.drop_probabilities[PROBABILITY_BINS[min(int(probability * 10), 9)]] += 1

    def absorb(self, summary: dict) -> None:
        """Adds the counts of another tally's summary."""
        self.numbers.update({key: summary[key] for key in NUMBERS})
        self.reasons.update(summary["reasons"])
        self.dropped_by_reason.update(summary["dropped_by_reason"])
        self.diagnostics.update(summary["diagnostics"])
        self.drop_probabilities.update(summary.get("doc_drop_probabilities", {}).get("histogram", {}))

    def summary(self) -> dict:
        return {key: self.numbers.get(key, 0) for key in NUMBERS} | {
            "reasons": dict(sorted(self.reasons.items())),
            "dropped_by_reason": dict(sorted(self.dropped_by_reason.items())),
            "diagnostics": dict(self.diagnostics),
            "doc_drop_probabilities": {"judged": sum(self.drop_probabilities.values()),
                                       "histogram": {b: self.drop_probabilities.get(b, 0) for b in PROBABILITY_BINS}},
        }

    def accounts_for(self, rows: int) -> bool:
        numbers = self.numbers
        return numbers["input"] == rows == sum(numbers[action] for action in ACTIONS)


class PromptTally:
    """Counts of a dry run: documents, and prompts and prompt tokens per stage."""

    KEYS = ("input", "doc_prompts", "doc_tokens", "chunk_prompts", "chunk_tokens")

    def __init__(self):
        self.numbers: Counter = Counter()

    def add(self, metadata: dict) -> None:
        self.numbers["input"] += 1
        for row in metadata.get("prox_prompts", []):
            self.numbers[f"{row['stage']}_prompts"] += 1
            self.numbers[f"{row['stage']}_tokens"] += len(row["prompt_token_ids"])

    def absorb(self, summary: dict) -> None:
        self.numbers.update({key: summary[key] for key in self.KEYS})

    def summary(self) -> dict:
        return {key: self.numbers.get(key, 0) for key in self.KEYS}

    def accounts_for(self, rows: int) -> bool:
        return self.numbers["input"] == rows


class AnnotationTally:
    """Counts of an annotation run: examples and labels per stage, refusals by category, programs by
    kind of noise, and what rewrites had discarded. Every document has a doc-level outcome (an example,
    refused, or skipped when the doc stage does not run), and every chunk an example or a refusal."""

    KEYS = ("input", "doc_examples", "doc_refused", "doc_skipped", "keep", "drop", "chunks", "chunk_examples",
            "chunk_refused", "train", "validation")
    COUNTERS = ("refused_by_category", "programs_by_kind", "rewrite_discarded")

    def __init__(self):
        self.numbers: Counter = Counter()
        self.counters: dict[str, Counter] = {name: Counter() for name in self.COUNTERS}

    def add(self, metadata: dict) -> None:
        record = metadata["prox_annotation"]
        self.numbers.update({"input": 1} | {key: record.get(key, 0) for key in self.KEYS if key != "input"})
        for name in self.COUNTERS:
            self.counters[name].update(record.get(name, {}))

    def absorb(self, summary: dict) -> None:
        self.numbers.update({key: summary[key] for key in self.KEYS})
        for name in self.COUNTERS:
            self.counters[name].update(summary[name])

    def summary(self) -> dict:
        return {key: self.numbers.get(key, 0) for key in self.KEYS} | {
            name: dict(sorted(counter.items())) for name, counter in self.counters.items()}

    def accounts_for(self, rows: int) -> bool:
        n = self.numbers
        return (n["input"] == rows == n["doc_examples"] + n["doc_refused"] + n["doc_skipped"]
                and n["chunks"] == n["chunk_examples"] + n["chunk_refused"]
                and n["keep"] + n["drop"] == n["doc_examples"]
                and n["train"] + n["validation"] == n["doc_examples"] + n["chunk_examples"])


TALLIES = {"documents": Tally, "prompts": PromptTally, "annotations": AnnotationTally}


class ShardStats(PipelineStep):
    """Counts each shard's outcomes; on the shard's end writes its summary, which marks it done."""

    name = "prox shard stats"
    type = "📊 - STATS"

    def __init__(self, output_path: str, job: str = "documents"):
        """`job`: "documents" (refine, apply), "prompts" (a dry run) or "annotations" (annotate)."""
        super().__init__()
        self.output_path = output_path
        self.job = job

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        layout = OutputLayout(self.output_path, self.job)
        new_tally = TALLIES[self.job]
        tallies: dict = {}
        for document in data:
            if not isinstance(document, ShardEnd):
                tallies.setdefault(document.metadata["prox_shard"], new_tally()).add(document.metadata)
                yield document
                continue
            tally = tallies.pop(document.shard, None) or new_tally()
            if document.failed:
                layout.write_json(layout.failure_name(document.shard), {"shard": document.shard,
                                                                      "error": document.failed})
                continue
            summary = {"shard": document.shard} | tally.summary()
            if not tally.accounts_for(document.rows):
                raise RuntimeError(f"shard {document.shard}: read {document.rows} rows but counted "
                                   f"{summary['input']} outcomes; not marking it done")
            if document.complete:
                layout.write_json(layout.summary_name(document.shard), summary)
                layout.remove(layout.limited_name(document.shard))
            else:
                layout.write_json(layout.limited_name(document.shard), summary)
            layout.remove(layout.failure_name(document.shard))
            self.stat_update("shards_done")
            yield document


def merge_summaries(layout: OutputLayout, shards: list[str], job: str = "documents") -> dict:
    """The run's statistics from the summaries of `shards`; shards without one are failed or pending."""
    total = TALLIES[job]()
    per_shard, pending, failed, limited = {}, [], {}, []
    for shard in shards:
        name = layout.summary_name(shard) if layout.is_done(shard) else layout.limited_name(shard)
        if layout.folder.isfile(name):
            summary = layout.read_json(name)
            total.absorb(summary)
            per_shard[shard] = {key: summary[key] for key in total.summary() if isinstance(summary[key], int)}
            if name == layout.limited_name(shard):
                limited.append(shard)
        elif layout.folder.isfile(layout.failure_name(shard)):
            failed[shard] = layout.read_json(layout.failure_name(shard))["error"]
        else:
            pending.append(shard)
    done = len(per_shard) - len(limited)
    return total.summary() | {
        "shards": {"total": len(shards), "done": done, "limited": len(limited), "failed": len(failed),
                   "pending": len(pending)},
        "failed_shards": failed,
        "pending_shards": pending,
        "limited_shards": limited,
        "per_shard": per_shard,
    }

"""The paper's measures of a refiner (arXiv 2409.17115, Appendix A): keep/drop F1 at the doc level,
F1 of removed lines at the chunk level; with kept ratios and the programs' failures by category."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prox.execution import doc_drops
from prox.language import RemoveAllLines, RemoveLines, parse_program

# the published 0.3B refiners' figures (paper, Appendix A), printed beside ours as a reference
PAPER_DOC_F1 = 82.6
PAPER_CHUNK_F1 = 75.2


def precision_recall_f1(true_positives: int, false_positives: int, false_negatives: int) -> dict:
    precision = true_positives / (true_positives + false_positives) if true_positives + false_positives else 0.0
    recall = true_positives / (true_positives + false_negatives) if true_positives + false_negatives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1}


def failures_of(program: str | None, level: str, failures: Counter) -> None:
    """Counts a program's diagnostics by category (a missing program as "no_program")."""
    if program is None:
        failures["no_program"] += 1
        return
    failures.update(d.category.value for d in parse_program(program, level).diagnostics)


@dataclass
class DocScore:
    """Keep/drop against the labels; each class's precision, recall and F1."""

    pairs: Counter = field(default_factory=Counter)  # (label, predicted) -> count
    failures: Counter = field(default_factory=Counter)

    def add(self, label: str, program: str | None) -> None:
        failures_of(program, "doc", self.failures)
        predicted = "drop" if program is not None and doc_drops(parse_program(program, "doc")) else "keep"
        self.pairs[(label, predicted)] += 1

    def report(self) -> dict:
        total = sum(self.pairs.values())
        per_class = {}
        for kind, other in (("keep", "drop"), ("drop", "keep")):
            per_class[kind] = precision_recall_f1(self.pairs[(kind, kind)], self.pairs[(other, kind)],
                                                  self.pairs[(kind, other)])
        correct = self.pairs[("keep", "keep")] + self.pairs[("drop", "drop")]
        return {"examples": total, "accuracy": 100 * correct / total if total else 0.0,
                "f1": (per_class["keep"]["f1"] + per_class["drop"]["f1"]) / 2, **per_class,
                "kept_ratio": 100 * (self.pairs[("keep", "keep")] + self.pairs[("drop", "keep")]) / total if total
                else 0.0,
                "labelled_keep_ratio": 100 * (self.pairs[("keep", "keep")] + self.pairs[("keep", "drop")]) / total
                if total else 0.0,
                "failures": dict(sorted(self.failures.items())), "paper_f1": PAPER_DOC_F1}


@dataclass
class ChunkScore:
    """Removed lines against the annotation's, line by line (micro-averaged over all chunks)."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    lines: int = 0
    examples: int = 0
    failures: Counter = field(default_factory=Counter)

    def add(self, removed: set[int], program: str | None, lines: range, count_failures: bool = True) -> None:
        if count_failures:
            failures_of(program, "chunk", self.failures)
        predicted = removed_lines(program, lines) if program is not None else set()
        self.true_positives += len(predicted & removed)
        self.false_positives += len(predicted - removed)
        self.false_negatives += len(removed - predicted)
        self.lines += len(lines)
        self.examples += 1

    def report(self) -> dict:
        removed = self.true_positives + self.false_positives
        return {"examples": self.examples, "lines": self.lines,
                **precision_recall_f1(self.true_positives, self.false_positives, self.false_negatives),
                "kept_ratio": 100 * (1 - removed / self.lines) if self.lines else 0.0,
                "labelled_kept_ratio": 100 * (1 - (self.true_positives + self.false_negatives) / self.lines)
                if self.lines else 0.0,
                "failures": dict(sorted(self.failures.items())), "paper_f1": PAPER_CHUNK_F1}


def removed_lines(program: str, lines: range) -> set[int]:
    """The lines of `lines` a chunk program removes."""
    removed: set[int] = set()
    for op in parse_program(program, "chunk").operations:
        if isinstance(op, RemoveAllLines):
            return set(lines)
        if isinstance(op, RemoveLines):
            removed.update(range(max(op.line_start, lines.start), min(op.line_end + 1, lines.stop)))
    return removed

"""What happened to one document: the per-document record written with every output row."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum

from prox.language import Category, Diagnostic


class Action(str, Enum):
    KEPT = "kept"  # written unchanged
    MODIFIED = "modified"  # written with the program's changes
    DROPPED = "dropped"  # written to the exclusions


class Reason(str, Enum):
    NO_PROGRAM = "no_program"  # kept: no stage ran on it
    DOC_KEEP = "doc_program_keep"  # kept by the doc program, no chunk program
    DOC_NO_DECISION = "doc_program_no_decision"  # kept: the doc program had no valid call
    DOC_DROP = "doc_program_drop"  # dropped by drop_doc()
    THRESHOLD_KEEP = "drop_threshold_keep"  # kept unchanged: the doc program dropped it, --drop-threshold keeps it
    REFINED = "refined"  # modified by the chunk program
    UNCHANGED = "chunk_program_no_change"  # kept: the chunk program changed nothing
    REMOVED_ALMOST_ALL = "removed_almost_all"  # dropped: at most 1 - threshold_2 of the words left
    TOO_SHORT = "too_short"  # dropped: at most min_words words left
    TOO_MANY_ERRORS = "too_many_errors"  # kept original: error_op or more counted errors
    BELOW_THRESHOLD_1 = "below_threshold_1"  # kept original: less than threshold_1 of the words left
    PROGRAM_REFUSED = "program_refused"  # kept original: the program broke a limit of the language
    EMPTY_TEXT = "empty_text"  # dropped: the input text is empty or whitespace only
    ENGINE_ERROR = "engine_error"  # kept unchanged: the engine could not serve the document's prompt
    INVALID_INPUT = "invalid_input"  # dropped: text missing, null or not a string, or an unreadable row


@dataclass(frozen=True)
class Outcome:
    """The result text and the record of how it came about."""

    text: str  # the refined text when modified, else the input text
    action: Action
    reason: Reason
    operations: tuple[str, ...] = ()  # canonical calls that took effect, doc stage first
    diagnostics: tuple[Diagnostic, ...] = ()
    errors: int = 0  # counted errors of the chunk program (the ones that decide the fallback)
    words_before: int = 0
    words_after: int = 0  # words the programs left (0 when the doc program dropped it)

    def diagnostic_counts(self) -> dict[str, int]:
        counts = Counter(d.category.value for d in self.diagnostics)
        return {c.value: counts.get(c.value, 0) for c in Category}

    def record(self) -> dict:
        """The record stored in the output row's metadata (fixed keys and types)."""
        return {
            "prox_action": self.action.value,
            "prox_reason": self.reason.value,
            "prox_operations": list(self.operations),
            "prox_diagnostics": self.diagnostic_counts(),
            "prox_diagnostic_details": [d.to_dict() for d in self.diagnostics],
            "prox_errors": self.errors,
            "prox_words_before": self.words_before,
            "prox_words_after": self.words_after,
        }

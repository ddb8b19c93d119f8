"""Runs a document's stored programs, doc level then chunk level: a pure function of its inputs."""

from __future__ import annotations

from prox.execution.chunk_level import execute_chunk
from prox.execution.doc_level import doc_decision, threshold_decision
from prox.execution.outcome import Action, Outcome, Reason
from prox.execution.policy import Policy
from prox.execution.words import count_words
from prox.language import DropDoc, Language, load_language, parse_program

DEFAULT_POLICY = Policy()


def execute_programs(
    text: str,
    doc_program: str | None,
    chunk_program: str | None,
    policy: Policy = DEFAULT_POLICY,
    language: Language | None = None,
    drop_probability: float | None = None,
) -> Outcome:
    """The outcome of running both programs on `text`; None means that stage did not run. With the
    policy's drop_threshold, the doc model's `drop_probability` (when the document has one) decides
    in place of the doc program."""
    if not text.strip():
        return Outcome(text, Action.DROPPED, Reason.EMPTY_TEXT)
    reason = Reason.NO_PROGRAM
    operations: tuple[str, ...] = ()
    diagnostics: tuple = ()
    if doc_program is not None:
        doc = parse_program(doc_program, "doc", language)
        diagnostics = doc.diagnostics
        decision = doc_decision(doc)
        if policy.drop_threshold is not None and drop_probability is not None:
            dropped_by_program = isinstance(decision, DropDoc)
            decision = threshold_decision(drop_probability, policy.drop_threshold, language)
            if dropped_by_program and chunk_program is None and not isinstance(decision, DropDoc):
                words = count_words(text)  # no chunk program was written for a dropped document
                return Outcome(text, Action.KEPT, Reason.THRESHOLD_KEEP, (decision.call,), diagnostics, 0, words, words)
        if isinstance(decision, DropDoc):
            return Outcome(text, Action.DROPPED, Reason.DOC_DROP, (decision.call,), diagnostics, 0,
                           count_words(text), 0)
        if decision is None:
            reason = Reason.DOC_NO_DECISION
        else:
            reason = Reason.DOC_KEEP
            operations = (decision.call,)
    if chunk_program is None:
        words = count_words(text)
        return Outcome(text, Action.KEPT, reason, operations, diagnostics, 0, words, words)
    limits = (language or load_language()).limits
    chunk = execute_chunk(text, parse_program(chunk_program, "chunk", language), policy, limits)
    return Outcome(
        text=chunk.text if chunk.action is Action.MODIFIED else text,
        action=chunk.action,
        reason=chunk.reason,
        operations=operations + chunk.operations,
        diagnostics=diagnostics + chunk.diagnostics,
        errors=chunk.errors,
        words_before=chunk.words_before,
        words_after=chunk.words_after,
    )

"""Executes a doc-level program: drop_doc() drops the document, anything else keeps it; or, with a
drop threshold, the model's probability of dropping it decides."""

from __future__ import annotations

from prox.language import DropDoc, KeepDoc, Program, load_language, parse_program
from prox.language.spec import Language


def doc_drops(program: Program) -> bool:
    """True if the program holds a valid drop_doc() call (it wins over keep_doc(), as in the reference).

    Unlike the reference, which drops on the substring "drop" anywhere, prose or a truncated call that
    mentions drop does not drop the document.
    """
    return isinstance(doc_decision(program), DropDoc)


def doc_decision(program: Program) -> DropDoc | KeepDoc | None:
    """The call that decides: the first valid drop_doc() (it wins), else the first keep_doc(), else None."""
    decision = None
    for op in program.operations:
        if isinstance(op, DropDoc):
            return op
        if decision is None and isinstance(op, KeepDoc):
            decision = op
    return decision


def threshold_decision(drop_probability: float, threshold: float,
                       language: Language | None = None) -> DropDoc | KeepDoc:
    """drop_doc() when the probability is at least the threshold, else keep_doc(), as the language writes them."""
    level = (language or load_language()).level("doc")
    call = level.call_making("DropDoc" if drop_probability >= threshold else "KeepDoc")
    return doc_decision(parse_program(call, "doc", language))

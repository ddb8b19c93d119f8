"""Executes a doc-level program: drop_doc() drops the document, anything else keeps it."""

from __future__ import annotations

from prox.language import DropDoc, KeepDoc, Program


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

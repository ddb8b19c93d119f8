"""Executes a doc-level program: drop_doc() drops the document, anything else keeps it."""

from __future__ import annotations

from prox.language import DropDoc, KeepDoc, Program


def doc_drops(program: Program) -> bool:
    """True if the program holds a valid drop_doc() call (it wins over keep_doc(), as in the reference).

    Unlike the reference, which drops on the substring "drop" anywhere, prose or a truncated call that
    mentions drop does not drop the document.
    """
    return any(isinstance(op, DropDoc) for op in program.operations)


def doc_decides(program: Program) -> bool:
    """True if the program holds a valid drop_doc() or keep_doc() call."""
    return any(isinstance(op, (DropDoc, KeepDoc)) for op in program.operations)

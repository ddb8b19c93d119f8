"""The rules baseline: classic heuristic filters (Gopher, C4, FineWeb) and boilerplate line rules, as ProX programs."""

from prox.engines.rules.doc_rules import DOC_RULES, DocText, doc_program, failed_rule
from prox.engines.rules.line_rules import (
    FRAGMENT_RULES,
    LINE_RULES,
    chunk_calls,
    chunk_program,
    first_line_number,
    numbered_lines,
)

__all__ = ["DOC_RULES", "FRAGMENT_RULES", "LINE_RULES", "DocText", "chunk_calls", "chunk_program",
           "doc_program", "failed_rule", "first_line_number", "numbered_lines"]

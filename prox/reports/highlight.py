"""A sampled document before and after, as lines: the ones its programs removed marked, and the text
its normalizations changed marked in place; from the operations the run applied
(metadata.prox_operations), so the page shows what happened, not what the model asked."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from prox.execution.chunk_level import merge_ranges
from prox.language import Normalize, RemoveAllLines, RemoveLines, parse_program


@dataclass(frozen=True)
class ShownLine:
    number: int
    text: str
    html: str  # the line, escaped, with normalized spans marked
    removed: bool
    after: str  # the line as the marks say it became


def applied(metadata: dict) -> tuple[list[tuple[int, int]], list[Normalize]]:
    """The line ranges removed and the normalizations applied, from the run's record."""
    program = parse_program("\n".join(metadata.get("prox_operations") or []), "chunk")
    ranges, normalizations = [], []
    for op in program.operations:
        if isinstance(op, RemoveLines):
            ranges.append((op.line_start, op.line_end))
        elif isinstance(op, RemoveAllLines):
            ranges.append((0, 10**9))
        elif isinstance(op, Normalize):
            normalizations.append(op)
    return merge_ranges(ranges), normalizations


def shown_lines(original: str, metadata: dict) -> list[ShownLine]:
    """Each line of `original`: removed by the run's operations, or kept with its normalized spans marked."""
    ranges, normalizations = applied(metadata)
    removed = set()
    lines = original.split("\n")
    for start, end in ranges:
        removed.update(range(start, min(end, len(lines) - 1) + 1))
    shown = []
    for number, line in enumerate(lines):
        marked, after = (escape(line), "") if number in removed else _marked(line, normalizations)
        shown.append(ShownLine(number, line, marked, number in removed, after))
    return shown


def marks_complete(lines: list[ShownLine], refined: str) -> bool:
    """Whether the marks account for the whole change: they cannot show a normalization of text that
    spans lines, nor one applied to another's result."""
    return "\n".join(line.after for line in lines if not line.removed) == refined


def _marked(line: str, normalizations: list[Normalize]) -> tuple[str, str]:
    """The line escaped, each occurrence of a normalization's source in <del> (its target in <ins>),
    and the line with those replacements made."""
    spans: list[tuple[int, int, Normalize]] = []
    for op in normalizations:
        if op.source_str in ("", " ") or "\n" in op.source_str:  # the interpreter ignores the first two
            continue
        start = line.find(op.source_str)
        while start >= 0:
            end = start + len(op.source_str)
            if all(end <= s or start >= e for s, e, _ in spans):
                spans.append((start, end, op))
            start = line.find(op.source_str, end)
    parts, after, position = [], [], 0
    for start, end, op in sorted(spans, key=lambda span: span[0]):
        parts.append(escape(line[position:start]))
        after += [line[position:start], op.target_str]
        parts.append(f'<del class="normalized" title="{escape(op.call)}">{escape(line[start:end])}</del>')
        if op.target_str:
            parts.append(f'<ins class="normalized">{escape(op.target_str)}</ins>')
        position = end
    parts.append(escape(line[position:]))
    return "".join(parts), "".join(after) + line[position:]

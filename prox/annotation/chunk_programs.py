"""Chunk-level examples from programs: each kind of noise's program checked, the programs merged,
the merged program run on its document and filtered by how much of the chunk it removes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from prox.annotation.refusals import LINE_OUTSIDE_CHUNK, REMOVES_TOO_MUCH, REWRITE_MISMATCH, Refused
from prox.execution import MEASURING
from prox.execution.chunk_level import execute_chunk, merge_ranges
from prox.execution.words import count_words
from prox.language import (
    Category,
    KeepChunk,
    Normalize,
    Program,
    RemoveAllLines,
    RemoveLines,
    load_language,
    parse_program,
)

_FENCE = re.compile(r"```[a-zA-Z]*\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class ChunkExample:
    program: str  # the completion: canonical calls, removals first, or keep_chunk()
    removed_lines: tuple[int, ...]  # the document's lines (0-based) the program removes
    kinds: tuple[str, ...] = ()  # the kinds of noise whose programs had calls (--method programs)


def chunk_text(document: str, lines: range) -> str:
    return "\n".join(document.split("\n")[lines.start : lines.stop])


def read_program(answer: str, document: str, lines: range) -> Program | Refused:
    """The program in a teacher's answer (inside a code fence if it has one), if it parses with no
    diagnostic and touches only the chunk (`lines`: the document lines it shows): its removals
    within them, its normalizations of text found there and nowhere else in the document."""
    fenced = _FENCE.search(answer)
    program = parse_program((fenced.group(1) if fenced else answer).strip(), "chunk")
    if program.diagnostics:
        first = program.diagnostics[0]
        return Refused(first.category.value, first.message)
    chunk = None
    for op in program.operations:
        if isinstance(op, RemoveAllLines):
            return Refused(LINE_OUTSIDE_CHUNK, "remove_lines(all=True) removes the whole document")
        if isinstance(op, RemoveLines) and op.line_start > op.line_end:
            return Refused(Category.BAD_VALUE.value, f"{op.call}: the range is reversed")
        if isinstance(op, RemoveLines) and not (lines.start <= op.line_start <= op.line_end < lines.stop):
            return Refused(LINE_OUTSIDE_CHUNK, f"{op.call}: the chunk shows lines {lines.start} to {lines.stop - 1}")
        if isinstance(op, Normalize):
            chunk = chunk if chunk is not None else chunk_text(document, lines)
            if document.count(op.source_str) != chunk.count(op.source_str):
                return Refused(LINE_OUTSIDE_CHUNK, f"{op.call}: source_str occurs outside the chunk too")
    return program


def program_of(removals: list[tuple[int, int]], normalizations: list[Normalize]) -> tuple[str, tuple[int, ...]]:
    """A chunk program's canonical text (removals merged, first; then each distinct normalize once,
    in order) and the lines it removes."""
    ranges = merge_ranges(removals)
    calls = [RemoveLines(1, "remove_lines", start, end).call for start, end in ranges]
    calls += dict.fromkeys(op.call for op in normalizations)
    removed = tuple(line for start, end in ranges for line in range(start, end + 1))
    return "\n".join(calls) or KeepChunk(1, "keep_chunk").call, removed


def merged_program(programs: list[Program]) -> tuple[str, tuple[int, ...]]:
    """One program doing what all of `programs` do, and the lines it removes."""
    operations = [op for program in programs for op in program.operations]
    return program_of([(op.line_start, op.line_end) for op in operations if isinstance(op, RemoveLines)],
                      [op for op in operations if isinstance(op, Normalize)])


def checked_example(document: str, lines: range, program: str, removed: tuple[int, ...], max_removal: float,
                    kinds: tuple[str, ...] = (), expected: str | None = None) -> ChunkExample | Refused:
    """`program` as an example, if it runs on its document with no diagnostic, gives `expected` (when
    given) and removes at most `max_removal` of the chunk's words."""
    result = execute_chunk(document, parse_program(program, "chunk"), MEASURING, load_language().limits)
    if result.diagnostics:
        first = result.diagnostics[0]
        return Refused(first.category.value, first.message)
    if expected is not None and result.text != expected:
        return Refused(REWRITE_MISMATCH, "the derived program's result differs from the rewrite's deletions")
    chunk_words = count_words(chunk_text(document, lines))
    removed_words = result.words_before - result.words_after
    if chunk_words and removed_words / chunk_words > max_removal:
        return Refused(REMOVES_TOO_MUCH, f"removes {removed_words} of the chunk's {chunk_words} words "
                       f"(more than {max_removal:.0%})")
    return ChunkExample(program, removed, kinds)

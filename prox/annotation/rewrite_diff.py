"""A teacher's rewrite of a chunk, reduced to a deletion-only program (after RefineX, arXiv 2507.03253).

The rewrite is aligned with the chunk line by line (difflib). Lines the teacher left out become
`remove_lines`; text deleted inside a line becomes `normalize(source_str=..., target_str="")`
when that text occurs once in the document (else it would be deleted elsewhere too, and the deletion
is left out). Insertions and substitutions are discarded: the derived program never adds a word.
The program is then run on the document, and must give exactly the chunk with the deletions kept.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from prox.annotation.chunk_programs import _RUN_POLICY, ChunkExample
from prox.annotation.refusals import NO_TEXT, REWRITE_MISMATCH, Refused
from prox.execution.chunk_level import execute_chunk, merge_ranges
from prox.language import KeepChunk, Normalize, RemoveLines, load_language, parse_program

_CLEAN = re.compile(r"\[clean\]\n?(.*?)\n?\[/clean\]", re.DOTALL)
_PAIRED = 0.8  # shares of characters (_shares) that make a rewritten line an original one shortened or lengthened
_SIMILAR = 0.5  # ... or that line substituted (left alone)


@dataclass
class Derivation:
    """What the derivation kept and left out."""

    removed: list[int] = field(default_factory=list)  # document lines
    deletions: list[str] = field(default_factory=list)  # texts deleted inside lines, once each
    expected: dict[int, str] = field(default_factory=dict)  # a line's text after its deletions
    discarded: Counter = field(default_factory=Counter)  # insertions, substitutions, ambiguous deletions


def read_rewrite(answer: str) -> str | Refused:
    found = _CLEAN.search(answer)
    if found is None:
        return Refused(NO_TEXT, "the answer has no [clean] ... [/clean] text")
    return found.group(1)


def derive(document: str, lines: range, rewrite: str) -> tuple[ChunkExample, Counter] | Refused:
    """The deletion-only program that takes `lines` of `document` to `rewrite` without its additions,
    and what was discarded (by kind); Refused when running it gives anything else."""
    document_lines = document.split("\n")
    original = document_lines[lines.start : lines.stop]
    derivation = Derivation()
    _align(original, rewrite.split("\n"), lines.start, document, derivation)
    ranges = merge_ranges([(line, line) for line in derivation.removed])
    calls = [RemoveLines(1, "remove_lines", start, end).call for start, end in ranges]
    calls += [Normalize(1, "normalize", text, "").call for text in derivation.deletions]
    program = "\n".join(calls) or KeepChunk(1, "keep_chunk").call
    expected = "\n".join(derivation.expected.get(i, line) for i, line in enumerate(document_lines)
                         if i not in set(derivation.removed))
    result = execute_chunk(document, parse_program(program, "chunk"), _RUN_POLICY, load_language().limits)
    if result.diagnostics or result.text != expected:
        problem = result.diagnostics[0].message if result.diagnostics else "its result differs from the rewrite's"
        return Refused(REWRITE_MISMATCH, f"the derived program does not reproduce the deletions: {problem}")
    removed = tuple(line for start, end in ranges for line in range(start, end + 1))
    return ChunkExample(program, removed), derivation.discarded


def _align(original: list[str], rewritten: list[str], first: int, document: str, derivation: Derivation) -> None:
    """Walks the line alignment: equal lines stay, left-out lines are removed, changed lines are paired."""
    matcher = SequenceMatcher(None, [line.strip() for line in original], [line.strip() for line in rewritten],
                              autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            derivation.removed += range(first + i1, first + i2)
        elif tag == "insert":
            derivation.discarded["insertions"] += j2 - j1
        elif tag == "replace":
            _pair(original[i1:i2], rewritten[j1:j2], first + i1, document, derivation)


def _pair(original: list[str], rewritten: list[str], first: int, document: str, derivation: Derivation) -> None:
    """Pairs each original line of a changed block with the rewritten line made from it, in order:
    rewritten lines passed over are insertions; an original line that none comes from is a
    substitution when the next rewritten line resembles it, else it is removed."""
    j = 0
    for i, line in enumerate(original):
        k = next((k for k in range(j, len(rewritten)) if _made_from(line, rewritten[k])), None)
        if k is not None:
            derivation.discarded["insertions"] += k - j
            _deletions_in(line, rewritten[k], first + i, document, derivation)
            j = k + 1
        elif j < len(rewritten) and _substituted(line, rewritten[j]):
            derivation.discarded["substitutions"] += 1
            j += 1
        else:
            derivation.removed.append(first + i)
    if j < len(rewritten):
        derivation.discarded["insertions"] += len(rewritten) - j
    if not derivation.discarded["insertions"]:
        del derivation.discarded["insertions"]


def _shares(line: str, rewritten: str) -> tuple[float, float]:
    """The share of `rewritten` that comes from `line`, and of `line` found in `rewritten` (runs of 4
    or more characters)."""
    blocks = SequenceMatcher(None, line, rewritten, autojunk=False).get_matching_blocks()
    matched = sum(block.size for block in blocks if block.size >= 4)
    return matched / max(len(rewritten.strip()), 1), matched / max(len(line.strip()), 1)


def _made_from(line: str, rewritten: str) -> bool:
    """Whether `rewritten` is `line` shortened (nearly all of it comes from the line), or lengthened
    (nearly all of the line is in it, and it is mostly the line)."""
    from_line, of_line = _shares(line, rewritten)
    return from_line >= _PAIRED or (of_line >= _PAIRED and from_line >= _SIMILAR)


def _substituted(line: str, rewritten: str) -> bool:
    return min(_shares(line, rewritten)) >= _SIMILAR


def _deletions_in(line: str, rewritten: str, index: int, document: str, derivation: Derivation) -> None:
    """Keeps the spans of `line` the rewrite deleted (when each occurs once in the document)."""
    kept_line = []
    for tag, i1, i2, _, _ in SequenceMatcher(None, line, rewritten, autojunk=False).get_opcodes():
        span = line[i1:i2]
        if tag == "equal":
            kept_line.append(span)
        elif tag == "insert":
            derivation.discarded["insertions"] += 1
        elif tag == "replace":
            derivation.discarded["substitutions"] += 1
            kept_line.append(span)
        elif not span.strip():  # whitespace only: the teacher tidied spacing
            kept_line.append(span)
        elif document.count(span) != 1 or span in derivation.deletions:
            derivation.discarded["ambiguous_deletions"] += 1
            kept_line.append(span)
        else:
            derivation.deletions.append(span)
    derivation.expected[index] = "".join(kept_line)

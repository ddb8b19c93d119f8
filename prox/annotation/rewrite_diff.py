"""A teacher's rewrite of a chunk, reduced to a deletion-only program (after RefineX, arXiv 2507.03253).

The rewrite is aligned with the chunk line by line (difflib). Lines the teacher left out become
`remove_lines`; text deleted inside a line becomes `normalize(source_str=..., target_str="")`
when that text occurs once in the document (else it would be deleted elsewhere too, and the deletion
is left out). Insertions and substitutions are discarded, and blank lines the teacher dropped are
kept: the derived program never adds a word. A rewrite that moves lines is refused: a moved line
would look removed. The program's expected result (the chunk with the kept deletions) comes along,
to be checked by running the program (chunk_programs.checked_example).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from prox.annotation.chunk_programs import program_of
from prox.annotation.refusals import NO_TEXT, REWRITE_MISMATCH, Refused
from prox.language import Normalize

_CLEAN = re.compile(r"\[clean\]\n?(.*?)\n?\[/clean\]", re.DOTALL)
_PAIRED = 0.8  # shares of characters (_shares) that make a rewritten line an original one shortened or lengthened
_SIMILAR = 0.5  # ... or that line substituted (left alone)
_RUN = 4  # characters in a row that count as shared (fewer in a shorter line)


@dataclass(frozen=True)
class Derived:
    program: str
    removed_lines: tuple[int, ...]  # document lines
    expected: str  # the document after the program: the chunk with the kept deletions
    discarded: Counter  # insertions, substitutions, ambiguous deletions


@dataclass
class _Derivation:
    removed: list[int] = field(default_factory=list)  # document lines
    deletions: list[str] = field(default_factory=list)  # texts deleted inside lines, once each
    expected: dict[int, str] = field(default_factory=dict)  # a line's text after its deletions
    inserted: set[str] = field(default_factory=set)  # rewritten lines that come from no original one
    discarded: Counter = field(default_factory=Counter)

    def remove(self, index: int, line: str) -> None:
        if line.strip():  # a blank line the teacher dropped is tidying, not noise
            self.removed.append(index)

    def insert(self, lines: list[str]) -> None:
        self.discarded["insertions"] += len(lines)
        self.inserted.update(line.strip() for line in lines)


def read_rewrite(answer: str) -> str | Refused:
    found = _CLEAN.search(answer)
    if found is None:
        return Refused(NO_TEXT, "the answer has no [clean] ... [/clean] text")
    return found.group(1)


def derive(document: str, lines: range, rewrite: str) -> Derived | Refused:
    """The deletion-only program that takes `lines` of `document` to `rewrite` without its additions."""
    document_lines = document.split("\n")
    original = document_lines[lines.start : lines.stop]
    derivation = _Derivation()
    _align(original, rewrite.split("\n"), lines.start, document, derivation)
    moved = [i for i in derivation.removed if document_lines[i].strip() in derivation.inserted]
    if moved:
        return Refused(REWRITE_MISMATCH, f"the rewrite moves line {moved[0]}: prox keeps the lines' order")
    program, removed = program_of([(line, line) for line in derivation.removed],
                                  [Normalize(1, "normalize", text, "") for text in derivation.deletions])
    gone = set(removed)
    expected = "\n".join(derivation.expected.get(i, line) for i, line in enumerate(document_lines) if i not in gone)
    return Derived(program, removed, expected, +derivation.discarded)


def _align(original: list[str], rewritten: list[str], first: int, document: str, derivation: _Derivation) -> None:
    """Walks the line alignment: equal lines stay, left-out lines are removed, changed lines are paired."""
    matcher = SequenceMatcher(None, [line.strip() for line in original], [line.strip() for line in rewritten],
                              autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "delete":
            for i in range(i1, i2):
                derivation.remove(first + i, original[i])
        elif tag == "insert":
            derivation.insert(rewritten[j1:j2])
        elif tag == "replace":
            _pair(original[i1:i2], rewritten[j1:j2], first + i1, document, derivation)


def _pair(original: list[str], rewritten: list[str], first: int, document: str, derivation: _Derivation) -> None:
    """Pairs each original line of a changed block with the rewritten line made from it, in order:
    rewritten lines passed over are insertions; an original line that none comes from is a
    substitution when the next rewritten line resembles it, else it is removed."""
    matcher = functools.cache(_matcher)  # pairing asks for a pair's blocks, sometimes twice, deletions for its opcodes
    j = 0
    for i, line in enumerate(original):
        k = next((k for k in range(j, len(rewritten)) if _made_from(matcher(line, rewritten[k]))), None)
        if k is not None:
            derivation.insert(rewritten[j:k])
            _deletions_in(matcher(line, rewritten[k]), first + i, document, derivation)
            j = k + 1
        elif j < len(rewritten) and min(_shares(matcher(line, rewritten[j]))) >= _SIMILAR:
            derivation.discarded["substitutions"] += 1
            j += 1
        else:
            derivation.remove(first + i, line)
    derivation.insert(rewritten[j:])


def _matcher(line: str, rewritten: str) -> SequenceMatcher:
    """A pair of lines' matcher (`a` the line, `b` the rewritten one): it keeps its blocks and opcodes
    once computed."""
    return SequenceMatcher(None, line, rewritten, autojunk=False)


def _shares(pair: SequenceMatcher) -> tuple[float, float]:
    """The share of the rewritten line that comes from the line, and of the line found in the
    rewritten one, counting runs of _RUN characters or more (or the whole of a shorter line)."""
    line, rewritten = pair.a, pair.b
    run = min(_RUN, len(line.strip()) or 1, len(rewritten.strip()) or 1)
    blocks = pair.get_matching_blocks()
    matched = sum(block.size for block in blocks if block.size >= run)
    return matched / max(len(rewritten.strip()), 1), matched / max(len(line.strip()), 1)


def _made_from(pair: SequenceMatcher) -> bool:
    """Whether the rewritten line is the line shortened (nearly all of it comes from the line), or
    lengthened (nearly all of the line is in it, and it is mostly the line)."""
    from_line, of_line = _shares(pair)
    return bool(pair.a.strip()) and (from_line >= _PAIRED or (of_line >= _PAIRED and from_line >= _SIMILAR))


def _deletions_in(pair: SequenceMatcher, index: int, document: str, derivation: _Derivation) -> None:
    """Keeps the spans of the line the rewrite deleted (when each occurs once in the document)."""
    line, kept_line = pair.a, []
    for tag, i1, i2, _, _ in pair.get_opcodes():
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

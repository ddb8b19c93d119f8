"""Executes a chunk-level program on a whole document, with the reference's decisions.

Line removals refer to the document's original lines (the numbers the model saw); normalizations
then run in program order on the remaining text. Work is linear in text size times operations:
ranges are merged rather than expanded, and a normalize that would grow the text past the
language's limit is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import compress

from prox.execution.outcome import Action, Reason
from prox.execution.policy import Policy
from prox.language import (
    Category,
    Diagnostic,
    Normalize,
    Program,
    RemoveAllLines,
    RemoveLines,
)
from prox.language.spec import Limits


@dataclass(frozen=True)
class ChunkResult:
    text: str  # what the program left (before the keep/drop decision)
    operations: tuple[str, ...]
    diagnostics: tuple[Diagnostic, ...]  # the program's and the execution's
    errors: int
    words_before: int
    words_after: int
    action: Action
    reason: Reason
    work: int  # characters scanned or written, to show that cost stays bounded


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges; touching ranges merge, as in the reference."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def execute_chunk(text: str, program: Program, policy: Policy, limits: Limits) -> ChunkResult:
    removes = any(isinstance(op, (RemoveLines, RemoveAllLines)) for op in program.operations)
    lines = text.split("\n") if removes else [text]  # without removals, the lines are never needed
    work = 2 * len(text)
    diagnostics = list(program.diagnostics)
    applied: list[str] = []
    ranges: list[tuple[int, int]] = []
    remove_all = False
    normalizations: list[Normalize] = []

    def note(category: Category, line: int, message: str, counted: bool) -> None:
        diagnostics.append(Diagnostic(category, line, message, counted, "chunk"))

    for op in program.operations:
        if isinstance(op, RemoveLines):
            if op.line_start > op.line_end:
                note(Category.NO_EFFECT, op.line, "line_start is after line_end: nothing removed", False)
            else:
                ranges.append((op.line_start, op.line_end))
                if op.line_start < len(lines):
                    applied.append(op.call)
        elif isinstance(op, RemoveAllLines):
            remove_all = True
            applied.append(op.call)
        elif isinstance(op, Normalize):
            normalizations.append(op)

    keep = bytearray(b"\x01") * len(lines)
    removed_ranges: list[tuple[int, int]] = []
    for start, end in merge_ranges(ranges):
        if start >= len(lines):
            note(Category.LINE_OUT_OF_RANGE, 0, f"lines {start}-{end} start past the last line "
                 f"({len(lines) - 1})", True)
            continue
        if end >= len(lines):
            note(Category.LINE_OUT_OF_RANGE, 0, f"lines {start}-{end} end past the last line "
                 f"({len(lines) - 1})", True)
            end = len(lines) - 1
        keep[start : end + 1] = bytes(end - start + 1)
        removed_ranges.append((start, end))
    if remove_all:
        keep = bytearray(len(lines))
    removed = len(lines) - sum(keep)
    result = text if removed == 0 else "\n".join(compress(lines, keep))

    words_before = len(text.split())
    if removed == 0:
        words: int | None = words_before
    elif removed * 2 >= len(lines):
        words = len(result.split())
    else:  # words never span lines: subtract those of the removed lines, the smaller part
        words = words_before - sum(len(line.split()) for start, end in removed_ranges
                                   for line in lines[start : end + 1])

    max_chars = int(limits.growth_factor * len(text)) + limits.growth_extra_chars
    for op in normalizations:
        source, target = op.source_str, op.target_str
        if source in ("", " "):
            note(Category.NO_EFFECT, op.line, "source_str is empty or one space: ignored", False)
            continue
        if len(target) > len(source):  # only a growing replacement needs the count first, for the limit
            work += len(result)
            new_length = len(result) + result.count(source) * (len(target) - len(source))
            if new_length > max_chars:
                note(Category.BAD_VALUE, op.line, f"normalize would grow the text to {new_length} characters "
                     f"(limit {max_chars})", True)
                continue
        work += 2 * len(result)
        replaced = result.replace(source, target)
        if replaced == result:  # nothing matched (CPython then hands back the same string: no scan)
            note(Category.NO_EFFECT, op.line, "source_str does not occur in the text, or changes nothing", False)
            continue
        if words is not None:
            work += len(result)
            words = words_replaced(result, source, target, words)
        result = replaced
        applied.append(op.call)

    errors = sum(d.counted or policy.count_all_diagnostics for d in diagnostics)
    if program.refused:
        errors = max(errors, policy.error_op)
    words_after = len(result.split()) if words is None else words
    action, reason = decide(words_before, words_after, errors, policy)
    if reason is Reason.TOO_MANY_ERRORS and program.refused:
        reason = Reason.PROGRAM_REFUSED
    if reason is Reason.REFINED and result == text:
        action, reason = Action.KEPT, Reason.UNCHANGED
    return ChunkResult(result, tuple(applied), tuple(diagnostics), errors, words_before, words_after,
                       action, reason, work)


def words_replaced(text: str, source: str, target: str, words: int) -> int | None:
    """The words of `text` (`words` of them) once every `source` is replaced by `target`, from each
    occurrence and the characters beside it, which alone decide whether words split or join there:
    far cheaper than counting the new text's words when occurrences are few. None (count them) when
    they are many, or when two touch (each one's neighbour is then replaced too)."""
    limit = 4 + len(text) // 256
    size = len(source)
    start, end = text.find(source), -1
    while start != -1:
        limit -= 1
        if limit < 0 or start == end:
            return None
        end = start + size
        left, right = text[start - 1 : start] if start else "", text[end : end + 1]
        words += len((left + target + right).split()) - len((left + source + right).split())
        start = text.find(source, end)
    return words


def decide(words_before: int, words_after: int, errors: int, policy: Policy) -> tuple[Action, Reason]:
    """The reference's decision, rule for rule; a text with no words no longer divides by zero."""
    if words_before:
        ratio = words_after / words_before * 1.0
    else:
        ratio = float("inf") if words_after else 1.0
    if ratio <= (1 - policy.threshold_2) and errors < policy.error_op:
        return Action.DROPPED, Reason.REMOVED_ALMOST_ALL
    if words_after <= policy.min_words:
        return Action.DROPPED, Reason.TOO_SHORT
    if ratio >= policy.threshold_1 and errors < policy.error_op:
        return Action.MODIFIED, Reason.REFINED
    if errors >= policy.error_op:
        return Action.KEPT, Reason.TOO_MANY_ERRORS
    return Action.KEPT, Reason.BELOW_THRESHOLD_1

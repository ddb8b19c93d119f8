"""Executes a chunk-level program on a whole document, with the reference's decisions.

Line removals refer to the document's original lines (the numbers the model saw); normalizations
then run in program order on the remaining text. Work is linear in text size times operations:
ranges are merged rather than expanded, and a normalize that would grow the text past the
language's limit is refused.
"""

from __future__ import annotations

from typing import NamedTuple

from prox.execution.outcome import Action, Reason
from prox.execution.policy import Policy
from prox.execution.words import count_words
from prox.language import (
    Category,
    Diagnostic,
    Normalize,
    Program,
    RemoveAllLines,
    RemoveLines,
)
from prox.language.spec import Limits


class ChunkResult(NamedTuple):
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
    diagnostics = list(program.diagnostics)
    applied: list[str] = []
    removals: list[RemoveLines | RemoveAllLines] = []
    normalizations: list[Normalize] = []
    for op in program.operations:
        if isinstance(op, Normalize):
            normalizations.append(op)
        elif isinstance(op, (RemoveLines, RemoveAllLines)):
            removals.append(op)
    words_before = count_words(text)
    result, words = text, words_before
    if removals:
        result, words = _remove_lines(text, removals, words_before, applied, diagnostics)
    work = 2 * len(text)

    max_chars = int(limits.growth_factor * len(text)) + limits.growth_extra_chars
    for op in normalizations:
        source, target = op.source_str, op.target_str
        if source in ("", " "):
            _note(diagnostics, Category.NO_EFFECT, op.line, "source_str is empty or one space: ignored", False)
            continue
        if len(target) > len(source):  # only a growing replacement needs the count first, for the limit
            work += len(result)
            new_length = len(result) + result.count(source) * (len(target) - len(source))
            if new_length > max_chars:
                _note(diagnostics, Category.BAD_VALUE, op.line,
                      f"normalize would grow the text to {new_length} characters (limit {max_chars})", True)
                continue
        work += 3 * len(result)  # scanned, split into pieces, joined
        parts = result.split(source)  # then joined: str.replace, with the occurrences' neighbours at hand
        if len(parts) == 1 or source == target:
            _note(diagnostics, Category.NO_EFFECT, op.line, "source_str does not occur in the text, or changes nothing",
                  False)
            continue
        if words is not None:
            words = words_replaced(parts, source, target, words)
        result = target.join(parts)
        applied.append(op.call)

    errors = sum(d.counted or policy.count_all_diagnostics for d in diagnostics) if diagnostics else 0
    if program.refused:
        errors = max(errors, policy.error_op)
    words_after = count_words(result) if words is None else words
    action, reason = decide(words_before, words_after, errors, policy)
    if reason is Reason.TOO_MANY_ERRORS and program.refused:
        reason = Reason.PROGRAM_REFUSED
    if reason is Reason.REFINED and result == text:
        action, reason = Action.KEPT, Reason.UNCHANGED
    return ChunkResult(result, tuple(applied), tuple(diagnostics), errors, words_before, words_after,
                       action, reason, work)


def _note(diagnostics: list[Diagnostic], category: Category, line: int, message: str, counted: bool) -> None:
    diagnostics.append(Diagnostic(category, line, message, counted, "chunk"))


def _remove_lines(text: str, removals: list[RemoveLines | RemoveAllLines], words: int, applied: list[str],
                  diagnostics: list[Diagnostic]) -> tuple[str, int | None]:
    """The text without the removed lines, and its words (None: count them), noting what took effect.
    Lines are found by offset where the ranges need them, not split out: most programs remove a few
    lines at the top and the bottom."""
    last = text.count("\n")
    ranges: list[tuple[int, int]] = []
    remove_all = False
    for op in removals:
        if isinstance(op, RemoveAllLines):
            remove_all = True
            applied.append(op.call)
        elif op.line_start > op.line_end:
            _note(diagnostics, Category.NO_EFFECT, op.line, "line_start is after line_end: nothing removed", False)
        else:
            ranges.append((op.line_start, op.line_end))
            if op.line_start <= last:
                applied.append(op.call)
    removed: list[tuple[int, int]] = []
    for start, end in merge_ranges(ranges):
        if start > last:
            _note(diagnostics, Category.LINE_OUT_OF_RANGE, 0, f"lines {start}-{end} start past the last line ({last})",
                  True)
            continue
        if end > last:
            _note(diagnostics, Category.LINE_OUT_OF_RANGE, 0, f"lines {start}-{end} end past the last line ({last})",
                  True)
            end = last
        removed.append((start, end))
    if remove_all:
        return "", 0
    if not removed:
        return text, words
    starts = _line_starts(text, last, sorted({0}.union(*((start, end + 1) for start, end in removed))))
    segments, next_kept = [], 0
    for start, end in removed:
        if next_kept < start:
            segments.append(text[starts[next_kept] : starts[start] - 1])
        next_kept = end + 1
    if next_kept <= last:
        segments.append(text[starts[next_kept] :])
    result = "\n".join(segments)
    kept = last + 1 - sum(end - start + 1 for start, end in removed)
    if kept * 2 <= last + 1:  # fewer lines kept than removed: count the kept ones
        return result, None
    # words never span lines: subtract those of the removed lines
    return result, words - sum(count_words(text[starts[start] : starts[end + 1]]) for start, end in removed)


def _line_starts(text: str, last: int, lines: list[int]) -> dict[int, int]:
    """Where each of `lines` (ascending, none past last + 1) starts in the text; line last + 1 starts one
    past its end. Found with find from the line before, or with rfind from the end where that is nearer."""
    starts = {}
    line = offset = 0
    for wanted in lines:
        if wanted - line > last + 1 - wanted:
            line, offset = last + 1, len(text) + 1
            while line > wanted:
                offset = text.rfind("\n", 0, offset - 1) + 1
                line -= 1
        while line < wanted:
            offset = text.find("\n", offset) + 1
            line += 1
        starts[wanted] = offset
    return starts


def words_replaced(parts: list[str], source: str, target: str, words: int) -> int | None:
    """The words of source.join(parts) (`words` of them) once target takes source's place, from each
    occurrence and the characters beside it, which alone decide whether words split or join there:
    far cheaper than counting the new text's words when occurrences are few. None (count them) when
    they are many, or when two touch (each one's neighbour is then replaced too)."""
    if len(parts) > 5 and len(parts) > 5 + sum(map(len, parts)) // 256:
        return None
    last = len(parts) - 1
    for index in range(1, len(parts)):  # occurrence index sits between parts[index - 1] and parts[index]
        before, after = parts[index - 1], parts[index]
        if (not before and index > 1) or (not after and index < last):
            return None
        left, right = before[-1:], after[:1]
        words += len((left + target + right).split()) - len((left + source + right).split())
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

"""Interpreter throughput: prox's parser and executor against a reference-style string-splitting loop.

prox reads programs with a real lexer and parser (never eval) and records diagnostics; the reference
reads them by splitting strings. This measures what that safety costs, in documents per second on one
core, on the bundled real web documents: with their stored programs, with generated programs in the
published chunk model's style, and with long documents (30-100 KB, 20-50 operations). Before timing,
it checks that both interpreters keep, drop and rewrite every generated document alike, and exits
non-zero if they do not. Prints a table and writes bench-out/interpreter.json.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_report import machine, save

from prox.execution import Action, Policy, execute_chunk, execute_programs
from prox.language import load_language, parse_program
from prox.language.parser import forget_parsed

ROOT = Path(__file__).parents[1]
SAMPLES = ROOT / "samples" / "cc-programs.jsonl"
SEED = 20240917
REPEATS = 9
SAMPLE_DOCUMENTS = 2000
LONG_DOCUMENTS = 100
POLICY = Policy()

# Strings the reference can read back: no comma, "=", parenthesis, quote, backslash or control character.
_UNREADABLE = re.compile(r'[,=()"\\\x00-\x1f\x7f\ud800-\udfff]')
_BOILERPLATE = ("Posted on ", "Read more", "Click here", "Share this", "Continue reading", "Leave a comment",
                "All rights reserved", "Related Posts", "Tagged ", "Permalink")


@dataclass(frozen=True)
class Doc:
    text: str
    doc_program: str | None
    chunk_program: str | None


# The reference's way: programs read by splitting strings. A result of None means dropped.


def reference_execute(doc: Doc) -> str | None:
    if doc.doc_program is not None and "drop" in doc.doc_program.strip(" "):
        return None
    if doc.chunk_program is None:
        return doc.text
    return reference_chunk(doc.text, doc.chunk_program)


def _between_parens(op: str) -> tuple[list[str], int]:
    """The call's parameters split on ","; one error when the closing parenthesis is missing."""
    close = op.find(")")
    return op[op.find("(") + 1 : close].split(","), int(close == -1)


def _value(param: str) -> str:
    return param.split("=")[1].strip('"')


def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _split_doc(text: str) -> list[str]:
    """The reference's line split: split, then each line copied into a new list, one by one."""
    processed = []
    for line in text.split("\n"):
        processed.append(line[:])
    return processed


def reference_chunk(original: str, program: str) -> str | None:
    """Step for step as the reference's execute_operations: lines split and copied, normalizations
    first in program order, then the lines split again and both the kept and the removed ones
    collected, intervals merged and checked, and the remove operations listed."""
    text = original
    lines = _split_doc(text)
    errors = 0
    removed: set[int] = set()
    intervals: list[tuple[int, int]] = []
    pairs: list[tuple[str, str]] = []
    for op in program.strip(" ").split("\n"):
        if op.startswith("remove_lines") and "all=True" not in op:
            params, missing = _between_parens(op)
            errors += missing
            try:
                start, end = int(params[0].split("=")[1]), int(params[1].split("=")[1])
            except (IndexError, ValueError):
                errors += 1
                continue
            intervals.append((start, end))
            for number in range(start, end + 1):
                removed.add(number)
        elif op.startswith("normalize"):
            params, _ = _between_parens(op)
            try:
                if len(params) == 1:
                    source = _value(params[0])
                    text = text.replace(source, "")
                    pairs.append((source, ""))
                elif len(params) == 2:
                    source, target = _value(params[0]), _value(params[1])
                    if source not in ("", " "):
                        text = text.replace(source, target)
                    pairs.append((source, target))
            except IndexError:
                errors += 1
        elif op.startswith("remove_lines"):
            removed = set(range(len(lines)))
    lines = _split_doc(text)
    kept = [line for index, line in enumerate(lines) if index not in removed]
    noise = [line for index, line in enumerate(lines) if index in removed]
    operations = []
    for start, end in _merge(intervals):
        if start >= len(lines):
            errors += 1
            continue
        if end >= len(lines):
            errors += 1
            end = len(lines) - 1
        operations.append([start, end])
    del noise, operations, pairs
    return _reference_decision(original, "\n".join(kept), errors)


def _reference_decision(original: str, result: str, errors: int) -> str | None:
    words_before, words_after = len(original.split()), len(result.split())
    if words_after / words_before <= 1 - POLICY.threshold_2 and errors < POLICY.error_op:
        return None
    if words_after <= POLICY.min_words:
        return None
    if words_after / words_before >= POLICY.threshold_1 and errors < POLICY.error_op:
        return result
    return original


# prox's way, through its public entry point.


def prox_execute(doc: Doc) -> str | None:
    outcome = execute_programs(doc.text, doc.doc_program, doc.chunk_program, POLICY)
    return None if outcome.action is Action.DROPPED else outcome.text


# The documents: the stored ones, and programs generated for the same texts in the chunk model's style.


def load_samples() -> list[Doc]:
    docs = []
    for line in SAMPLES.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        docs.append(Doc(row["text"], row["metadata"]["doc_program"], row["metadata"]["chunk_program"]))
    return docs


def _readable(phrase: str) -> bool:
    return len(phrase.strip()) >= 4 and not _UNREADABLE.search(phrase)


def _phrases(text: str, rng: random.Random, count: int) -> list[str]:
    """Up to `count` strings that occur in the text: known boilerplate first, then runs of 2-4 words."""
    found = [common for common in _BOILERPLATE if common in text]
    lines = [line for line in text.split("\n") if len(line.split(" ")) >= 2]
    for _ in range(count * 5):
        if len(found) >= count or not lines:
            break
        words = rng.choice(lines).split(" ")
        first = rng.randrange(len(words) - 1)
        phrase = " ".join(words[first : first + rng.randint(2, 4)])
        if _readable(phrase) and phrase not in found:
            found.append(phrase)
    return rng.sample(found, min(count, len(found)))


def _remove(start: int, end: int) -> str:
    return f"remove_lines(line_start={start}, line_end={end})"


def _normalize(source: str, rng: random.Random) -> str:
    if rng.random() < 0.2:
        return f'normalize(source_str="{source}")'
    return f'normalize(source_str="{source}", target_str="")'


def sample_program(text: str, rng: random.Random) -> str:
    """A program like the chunk model's: navigation and footer lines out, a few strings normalized."""
    last = text.count("\n")
    ops = []
    if rng.random() < 0.03:
        ops.append(_remove(0, last))  # the model removes everything: the document is dropped
    if rng.random() < 0.7:
        ops.append(_remove(0, rng.randint(0, min(5, last))))
    if rng.random() < 0.3 and last > 10:
        start = rng.randint(6, last - 3)
        ops.append(_remove(start, start + rng.randint(0, 2)))
    if rng.random() < 0.5:
        ops.append(_remove(max(0, last - rng.randint(0, 2)), last))
    if rng.random() < 0.05:
        ops.append(_remove(last + 1, last + rng.randint(1, 20)))  # past the end: a counted error
    ops += [_normalize(p, rng) for p in _phrases(text, rng, rng.randint(0, 3))]
    return "\n".join([*ops, "keep_chunk()"])


def long_program(text: str, rng: random.Random) -> str:
    """20-50 operations: short line ranges in document order, with normalizations among them."""
    last = text.count("\n")
    count = rng.randint(20, 50)
    normalizations = [_normalize(p, rng) for p in _phrases(text, rng, count * 35 // 100)]
    starts = sorted(rng.sample(range(last), count - len(normalizations)))
    ops = [_remove(start, min(last, start + rng.randint(0, 7))) for start in starts]
    for op in normalizations:
        ops.insert(rng.randint(0, len(ops)), op)
    return "\n".join([*ops, "keep_chunk()"])


def sample_documents(samples: list[Doc], rng: random.Random) -> list[Doc]:
    texts = [d.text for d in samples]
    return [Doc(text, "keep_doc()", sample_program(text, rng))
            for text in (texts[i % len(texts)] for i in range(SAMPLE_DOCUMENTS))]


def long_documents(samples: list[Doc], rng: random.Random) -> list[Doc]:
    docs = []
    for _ in range(LONG_DOCUMENTS):
        target, parts = rng.randint(30_000, 100_000), []
        while sum(map(len, parts)) < target:
            parts.append(rng.choice(samples).text)
        text = "\n".join(parts)
        docs.append(Doc(text, "keep_doc()", long_program(text, rng)))
    return docs


# Checking and timing.


def disagreements(docs: list[Doc]) -> list[int]:
    return [i for i, doc in enumerate(docs) if prox_execute(doc) != reference_execute(doc)]


def best_of(*functions: Callable[[], object]) -> list[float]:
    """Each function's best time of REPEATS; they take turns, so that all see the same machine load.
    prox forgets what it parsed before each turn: a real run parses each chunk program once."""
    best = [float("inf")] * len(functions)
    for _ in range(REPEATS):
        for index, function in enumerate(functions):
            forget_parsed()
            start = time.perf_counter()
            function()
            best[index] = min(best[index], time.perf_counter() - start)
    return best


def _statements(program: str | None) -> int:
    return sum(1 for line in (program or "").split("\n") if line.strip())


def throughput(docs: list[Doc]) -> dict:
    prox_s, reference_s = best_of(lambda: [prox_execute(d) for d in docs],
                                  lambda: [reference_execute(d) for d in docs])
    return {"documents": len(docs), "mean_chars": sum(len(d.text) for d in docs) // len(docs),
            "mean_ops": sum(_statements(d.chunk_program) for d in docs) / len(docs),
            "prox_docs_per_s": len(docs) / prox_s, "reference_docs_per_s": len(docs) / reference_s,
            "prox_over_reference": reference_s / prox_s}


def prox_stages(docs: list[Doc]) -> dict:
    """prox's time per document split into parsing both programs and executing the chunk program."""
    limits = load_language().limits
    parsed = [(d.text, parse_program(d.chunk_program, "chunk")) for d in docs if d.chunk_program is not None]

    def parse_all() -> None:
        for d in docs:
            parse_program(d.doc_program, "doc")
            parse_program(d.chunk_program, "chunk")

    def execute_all() -> None:
        for text, program in parsed:
            execute_chunk(text, program, POLICY, limits)

    parse_s, execute_s = best_of(parse_all, execute_all)
    return {"parse_us_per_doc": parse_s / len(docs) * 1e6, "execute_us_per_doc": execute_s / len(docs) * 1e6}


def print_table(results: dict) -> None:
    print(f"{'workload':<10}{'docs':>6}{'chars':>8}{'ops':>6}{'prox docs/s':>14}{'reference docs/s':>18}"
          f"{'prox/ref':>10}{'parse us':>10}{'exec us':>9}")
    for name, row in results.items():
        print(f"{name:<10}{row['documents']:>6}{row['mean_chars']:>8}{row['mean_ops']:>6.1f}"
              f"{row['prox_docs_per_s']:>14.0f}{row['reference_docs_per_s']:>18.0f}"
              f"{row['prox_over_reference']:>9.2f}x{row['parse_us_per_doc']:>10.1f}{row['execute_us_per_doc']:>9.1f}")


def main() -> int:
    rng = random.Random(SEED)
    samples = load_samples()
    workloads = {
        "stored": [samples[i % len(samples)] for i in range(SAMPLE_DOCUMENTS)],
        "generated": sample_documents(samples, rng),
        "long": long_documents(samples, rng),
    }
    stored_agree = len(samples) - len(disagreements(samples))
    print(f"agreement on stored programs (some malformed on purpose): {stored_agree}/{len(samples)}")
    checked = workloads["generated"] + workloads["long"]
    differ = disagreements(checked)
    print(f"agreement on generated programs: {len(checked) - len(differ)}/{len(checked)}")
    if differ:
        print(f"prox and the reference differ on generated documents {differ[:10]}", file=sys.stderr)
        return 1
    print(f"machine: {machine()}; best of {REPEATS}, single process")
    results = {name: throughput(docs) | prox_stages(docs) for name, docs in workloads.items()}
    print_table(results)
    print("parse us, exec us: prox's time per document parsing both programs, executing the chunk program")
    save("interpreter", {"repeats": REPEATS, "seed": SEED, "stored_agree": stored_agree,
                         "stored_documents": len(samples), "generated_agree": len(checked), "workloads": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())

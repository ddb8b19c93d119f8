"""Document rules of the classic heuristic filters (Gopher, C4, FineWeb) written as doc-level programs.

Each rule is a function named after the filter and the measure it reads; it returns why the document
fails (the figure against the published threshold) or None. The first failing rule in DOC_RULES
decides `drop_doc()`, and its name and reason become the program's trailing comment. Thresholds are
the published ones (Gopher: Rae et al. 2021, table A1; C4: Raffel et al. 2020 as its TFDS code has
them; FineWeb: Penedo et al. 2024, as datatrove has them). Ratios are taken over non-blank lines and
over whitespace words without edge punctuation (rules/text.py), not a tokenizer model's words, so
figures can differ a little from other implementations.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import cached_property

from prox.engines.rules.text import ends_with_ellipsis, ends_with_terminal_punctuation, words
from prox.language import DropDoc, KeepDoc

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
C4_POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
BULLETS = ("•", "-", "*", "‣", "▪", "●", "◦", "·", "–")
TOP_NGRAM_LIMITS = ((2, 0.20), (3, 0.18), (4, 0.16))
DUPLICATE_NGRAM_LIMITS = ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_SENTENCE_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s|$)")
_LETTER = re.compile(r"[^\W\d_]")
_CITATION = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")


class DocText:
    """A document and the measures its rules share, each computed once, when a rule first asks."""

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def lines(self) -> list[str]:
        """The non-blank lines."""
        return [line for line in self.text.split("\n") if line.strip()]

    @cached_property
    def words(self) -> list[str]:
        return words(self.text)

    @cached_property
    def word_chars(self) -> int:
        return sum(map(len, self.words))

    @cached_property
    def c4_lines(self) -> list[str]:
        """The lines C4 keeps: ending like a sentence, at least 5 words, no "javascript", no policy phrase."""
        kept = []
        for raw in self.lines:
            line = _CITATION.sub("", raw.strip())
            lower = line.lower()
            if (ends_with_terminal_punctuation(line) and len(line.split()) >= 5 and "javascript" not in lower
                    and not any(phrase in lower for phrase in C4_POLICY_PHRASES)):
                kept.append(line)
        return kept


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _duplicates(items: Iterable[str]) -> tuple[int, int]:
    """How many items repeat an earlier one, and their characters."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _ngrams(items: list[str], n: int) -> Iterable[tuple[str, ...]]:
    return zip(*(items[i:] for i in range(n)), strict=False)


def _repeated_blocks(blocks: list[str], text_chars: int, unit: str) -> str | None:
    """Gopher's two limits on repeated lines or paragraphs: 30% of them, 20% of the characters."""
    count, chars = _duplicates(blocks)
    if _share(count, len(blocks)) > 0.30:
        return f"{_share(count, len(blocks)):.2f} of {unit} are repeats, limit 0.30"
    if _share(chars, text_chars) > 0.20:
        return f"{_share(chars, text_chars):.2f} of characters in repeated {unit}, limit 0.20"
    return None


def gopher_word_count(doc: DocText) -> str | None:
    count = len(doc.words)
    return None if 50 <= count <= 100_000 else f"{count} words outside 50..100000"


def gopher_mean_word_length(doc: DocText) -> str | None:
    if not doc.words:
        return None
    mean = doc.word_chars / len(doc.words)
    return None if 3 <= mean <= 10 else f"mean word length {mean:.1f} outside 3..10"


def gopher_symbol_ratio(doc: DocText) -> str | None:
    for name, count in (("#", doc.text.count("#")), ("ellipsis", doc.text.count("...") + doc.text.count("…"))):
        if doc.words and count / len(doc.words) > 0.1:
            return f"{name} to word ratio {count / len(doc.words):.2f}, limit 0.10"
    return None


def gopher_bullet_lines(doc: DocText) -> str | None:
    share = _share(sum(line.lstrip().startswith(BULLETS) for line in doc.lines), len(doc.lines))
    return f"{share:.2f} of lines start with a bullet, limit 0.90" if share > 0.90 else None


def gopher_ellipsis_lines(doc: DocText) -> str | None:
    share = _share(sum(map(ends_with_ellipsis, doc.lines)), len(doc.lines))
    return f"{share:.2f} of lines end with an ellipsis, limit 0.30" if share > 0.30 else None


def gopher_alpha_words(doc: DocText) -> str | None:
    if not doc.words:
        return None
    share = sum(1 for word in doc.words if _LETTER.search(word)) / len(doc.words)
    return f"{share:.2f} of words have a letter, needs 0.80" if share < 0.80 else None


def gopher_stop_words(doc: DocText) -> str | None:
    found = STOP_WORDS.intersection(word.lower() for word in doc.words)
    return f"{len(found)} of the stop words {'/'.join(sorted(STOP_WORDS))}, needs 2" if len(found) < 2 else None


def c4_lorem_ipsum(doc: DocText) -> str | None:
    return 'contains "lorem ipsum"' if "lorem ipsum" in doc.text.lower() else None


def c4_curly_bracket(doc: DocText) -> str | None:
    """C4 drops a page when a line it would keep has a "{" (likely code)."""
    return 'a "{" in a sentence line' if any("{" in line for line in doc.c4_lines) else None


def c4_sentences(doc: DocText) -> str | None:
    count = sum(max(1, len(_SENTENCE_END.findall(line))) for line in doc.c4_lines)
    return f"{count} sentences in lines C4 keeps, needs 3" if count < 3 else None


def fineweb_line_punctuation(doc: DocText) -> str | None:
    share = _share(sum(map(ends_with_terminal_punctuation, doc.lines)), len(doc.lines))
    return f"{share:.2f} of lines end with punctuation, needs 0.12" if doc.lines and share < 0.12 else None


def fineweb_short_lines(doc: DocText) -> str | None:
    share = _share(sum(len(line) <= 30 for line in doc.lines), len(doc.lines))
    return f"{share:.2f} of lines have at most 30 characters, limit 0.67" if share > 0.67 else None


def fineweb_duplicate_lines(doc: DocText) -> str | None:
    share = _share(_duplicates(doc.lines)[1], len(doc.text) - doc.text.count("\n"))
    return f"{share:.3f} of characters in repeated lines, limit 0.010" if share > 0.01 else None


def fineweb_list_ratio(doc: DocText) -> str | None:
    share = _share(doc.text.count("\n"), len(doc.words))
    return f"{share:.2f} line breaks per word, limit 0.30" if share > 0.30 else None


def gopher_duplicate_lines(doc: DocText) -> str | None:
    return _repeated_blocks(doc.lines, len(doc.text), "lines")


def gopher_duplicate_paragraphs(doc: DocText) -> str | None:
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(doc.text.strip()) if p.strip()]
    return _repeated_blocks(paragraphs, len(doc.text), "paragraphs")


def gopher_top_ngrams(doc: DocText) -> str | None:
    """The characters of the most frequent (repeated) n-gram, n = 2..4, against all word characters."""
    for n, limit in TOP_NGRAM_LIMITS:
        counts = Counter(_ngrams(doc.words, n))
        if not counts:
            continue
        gram, count = counts.most_common(1)[0]
        share = _share(sum(map(len, gram)) * count, doc.word_chars) if count > 1 else 0.0
        if share > limit:
            return f"the top {n}-gram covers {share:.2f} of characters, limit {limit:.2f}"
    return None


def gopher_duplicate_ngrams(doc: DocText) -> str | None:
    """The characters of words inside repeats of earlier n-grams, n = 5..10, each word counted once.
    An n-gram can only repeat where its first five words do, so only those places are looked at."""
    first = DUPLICATE_NGRAM_LIMITS[0][0]
    counts = Counter(_ngrams(doc.words, first))
    starts = [i for i, gram in enumerate(_ngrams(doc.words, first)) if counts[gram] > 1]
    if not starts:
        return None
    for n, limit in DUPLICATE_NGRAM_LIMITS:
        seen: set[tuple[str, ...]] = set()
        covered = bytearray(len(doc.words))
        for start in starts:
            gram = tuple(doc.words[start : start + n])
            if len(gram) < n:
                break
            if gram in seen:
                covered[start : start + n] = b"\x01" * n
            else:
                seen.add(gram)
        share = _share(sum(len(word) for word, hit in zip(doc.words, covered, strict=True) if hit), doc.word_chars)
        if share > limit:
            return f"repeated {n}-grams cover {share:.2f} of characters, limit {limit:.2f}"
    return None


DocRule = Callable[[DocText], str | None]

# Cheap rules first; the first that fails decides.
DOC_RULES: tuple[DocRule, ...] = (
    gopher_word_count, gopher_mean_word_length, gopher_symbol_ratio, gopher_bullet_lines, gopher_ellipsis_lines,
    gopher_alpha_words, gopher_stop_words,
    c4_lorem_ipsum, c4_curly_bracket, c4_sentences,
    fineweb_line_punctuation, fineweb_short_lines, fineweb_duplicate_lines, fineweb_list_ratio,
    gopher_duplicate_lines, gopher_duplicate_paragraphs, gopher_top_ngrams, gopher_duplicate_ngrams,
)


def failed_rule(text: str, rules: Iterable[DocRule] = DOC_RULES) -> tuple[str, str] | None:
    """The first rule `text` fails, as (name, reason), or None."""
    doc = DocText(text)
    for rule in rules:
        if (reason := rule(doc)) is not None:
            return rule.__name__, reason
    return None


def doc_program(text: str) -> str:
    """`drop_doc()` with the failing rule in a comment, or `keep_doc()`."""
    failure = failed_rule(text)
    if failure is None:
        return KeepDoc(1, "keep_doc").call
    return f"{DropDoc(1, 'drop_doc').call}  # {failure[0]}: {failure[1]}"

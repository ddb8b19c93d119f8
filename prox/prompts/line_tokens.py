"""Each line of a document tokenized once, for the prompts of both stages.

Both stages' prompts are made of the document's lines: the doc stage's is the whole text in a chat
frame, the chunk stage's are numbered lines packed by their token counts in another frame. Their ids
can be put together from the ids of the pieces when no token can span the place where two pieces
meet. For the refiners' Llama-2 tokenizer (BPE on whole lines, "▁" for spaces and before the first
piece only, byte tokens for a newline) that holds at every newline, since no token holds one; where
a line number's "]" meets a line, or a document's last character meets the frame, it holds unless
some token holds those two characters side by side, which is checked pair by pair. So each line is
tokenized once, as it reads after a newline, and every prompt is assembled from those ids, equal id
for id to tokenizing the prompt's text (tests/test_prompts.py checks it on real and edge-case text).

A tokenizer of another kind, a document that holds the text of a special token ("</s>"), or a
meeting of pieces that a token may span, takes the whole-text path instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from prox.engines.models import encode_texts


@dataclass(frozen=True)
class DocumentLines:
    """A document's lines (split on "\\n") and each line's ids as it tokenizes after a newline."""

    lines: list[str]
    ids: list[list[int]]


class LineTokenizer:
    """Tokenizes pieces as they read after a newline, and says where two pieces may not be joined."""

    def __init__(self, tokenizer, pairs: frozenset[tuple[str, str]], specials: tuple[str, ...]):
        """`pairs`: the characters that some token holds side by side; `specials`: special tokens' texts."""
        self.tokenizer = tokenizer
        self.newline = encode_texts(tokenizer, ["\n"], special_tokens=False)[0]  # what "\n" + piece starts with
        self.specials = specials
        self.pairs = pairs
        self.newline_inside = self.in_context(["\n"])[0] or []  # a newline between two pieces

    @classmethod
    def for_tokenizer(cls, tokenizer) -> LineTokenizer | None:
        """A LineTokenizer when `tokenizer` is of the kind described above, else None."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None or not hasattr(backend, "to_str"):
            return None
        facts = _vocabulary_facts(backend.to_str())
        return None if facts is None else cls(tokenizer, *facts)

    def in_context(self, pieces: list[str]) -> list[list[int] | None]:
        """Each piece's ids as it reads after a newline (None in the unexpected case that the newline's
        own ids do not come first)."""
        size = len(self.newline)
        return [ids[size:] if ids[:size] == self.newline else None
                for ids in encode_texts(self.tokenizer, ["\n" + piece for piece in pieces], special_tokens=False)]

    def joins(self, left: str, right: str) -> bool:
        """Whether a token may span the end of `left` and the start of `right` (never at an empty side)."""
        return bool(self.joined([left], [right]))

    def joined(self, lefts: list[str], rights: list[str]) -> list[int]:
        """The indices i where a token may span the end of lefts[i] and the start of rights[i], as
        `joins` says for one pair (`lefts` may be longer)."""
        pairs = self.pairs
        return [i for i, (left, right) in enumerate(zip(lefts, rights, strict=False)) if left and right
                and (_as_token_text(left[-1]), _as_token_text(right[0])) in pairs]

    def holds_special(self, text: str) -> bool:
        """Whether the text holds a special token's text, which the tokenizer reads as that token."""
        return "<" in text and any(special in text for special in self.specials)

    def document_lines(self, texts: list[str]) -> list[DocumentLines | None]:
        """The lines of each text with their ids, in one batched call; None for a text that must take
        the whole-text path."""
        split = [None if self.holds_special(text) else text.split("\n") for text in texts]
        flat = self.in_context([line for lines in split if lines is not None for line in lines])
        result: list[DocumentLines | None] = []
        start = 0
        for lines in split:
            if lines is None:
                result.append(None)
                continue
            ids = flat[start : start + len(lines)]
            start += len(lines)
            result.append(None if any(i is None for i in ids) else DocumentLines(lines, ids))
        return result


@lru_cache(maxsize=4)
def _vocabulary_facts(config_text: str) -> tuple[frozenset[tuple[str, str]], tuple[str, ...]] | None:
    """From a tokenizer's configuration (its JSON text): the character pairs its tokens hold and its
    special tokens' texts, or None when it is not of the kind described above. Remembered: reading
    the vocabulary takes a few tenths of a second, and each task's two stages ask for the same one."""
    config = json.loads(config_text)
    model, pre = config.get("model") or {}, config.get("pre_tokenizer") or {}
    llama_style = (model.get("type") == "BPE" and config.get("normalizer") is None
                   and pre.get("type") == "Metaspace" and pre.get("replacement") == "▁"
                   and pre.get("prepend_scheme") == "first" and pre.get("split") is False)
    vocabulary = list(model.get("vocab") or {})
    if not llama_style or any("\n" in token for token in vocabulary):
        return None
    pairs = frozenset((token[k], token[k + 1]) for token in vocabulary for k in range(len(token) - 1))
    return pairs, tuple(token["content"] for token in config.get("added_tokens", []) if token["content"])


def _as_token_text(char: str) -> str:
    """How a character appears inside the vocabulary's tokens (spaces as "▁")."""
    return "▁" if char == " " else char

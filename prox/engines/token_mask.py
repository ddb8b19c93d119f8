"""A grammar's token mask applied to logits on a CPU, by whole rows and array operations.

vLLM applies a grammar's bitmask (32 tokens per int32 word, a set bit allows the token) with
xgrammar's CPU kernel, which writes -inf token by token: 28 ms a step for 200 rows of the Llama
vocabulary when a row allows a few tokens, as a program's grammar does at most positions. That was
most of what --constrained cost on vLLM's CPU build. Here a row that allows few tokens is filled
with -inf at once and its allowed logits put back; a row that forbids few tokens gets -inf at those
tokens only. Same result as xgrammar's (tests/test_token_mask.py), about 2 ms for those 200 rows.
"""

from __future__ import annotations

import numpy as np
import torch

FORBIDDEN = float("-inf")
MOST_WORDS_SHARE = 1 / 8  # past this share of the mask's words to unpack, xgrammar's kernel is as fast


def apply_token_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, indices: list[int] | None = None) -> bool:
    """Masks `logits` (rows, vocabulary; float, on the CPU) in place with `bitmask` (rows, words;
    int32), row `i` of one with row `i` of the other, for every row or the rows in `indices`, as
    xgrammar.apply_token_bitmask_inplace does. False, with nothing changed, where a mask allows and
    forbids too many tokens alike for this to pay, or where the tensors are not what vLLM passes (2-D,
    an int32 mask, rows that exist): the caller applies it its own way, and says what is wrong."""
    if logits.dim() != 2 or bitmask.dim() != 2 or bitmask.dtype != torch.int32:
        return False
    words = bitmask.numpy()
    rows = np.arange(len(words)) if indices is None else np.asarray(indices, dtype=np.int64)
    if (indices is None and len(words) != len(logits)) or (
            len(rows) and (rows.min() < 0 or rows.max() >= min(len(words), len(logits)))):
        return False
    words = words[rows]
    allowing, forbidding = (words != 0).sum(axis=1), (words != -1).sum(axis=1)  # words with a bit set, a bit clear
    if np.minimum(allowing, forbidding).sum() > MOST_WORDS_SHARE * words.size:
        return False
    vocab = min(logits.shape[-1], words.shape[-1] * 32)
    target = logits[:, :vocab]
    few = allowing < forbidding  # rows whose allowed tokens are the fewer to unpack
    if few.any():
        few_rows = rows[few]
        row, token = _set_bits(words[few], vocab)
        row, token = torch.from_numpy(few_rows[row]), torch.from_numpy(token)
        allowed = target[row, token]
        _forbid_rows(target, few_rows)
        target[row, token] = allowed
    if not few.all():
        row, token = _set_bits(~words[~few], vocab)
        target[torch.from_numpy(rows[~few][row]), torch.from_numpy(token)] = FORBIDDEN
    return True


def _set_bits(words: np.ndarray, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, token) of every set bit below `vocab`, unpacking only the words that have one."""
    row, word = np.nonzero(words)
    bits = np.unpackbits(words[row, word].astype("<i4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="little")
    which, bit = np.nonzero(bits)
    token = word[which] * 32 + bit
    below = token < vocab
    return row[which][below], token[below]


def _forbid_rows(target: torch.Tensor, rows: np.ndarray) -> None:
    """-inf in every column of `rows`: one fill where they are a run (mostly, all of them)."""
    if np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        target[rows[0]:rows[0] + len(rows)].fill_(FORBIDDEN)
    else:
        target.index_fill_(0, torch.from_numpy(rows), FORBIDDEN)

"""A grammar's token mask applied to logits on a CPU: rows that allow few tokens by whole rows.

vLLM applies a grammar's bitmask (32 tokens per int32 word, a set bit allows the token) with
xgrammar's CPU kernel, which writes -inf token by token: 29 ms a step for 229 rows of the Llama
vocabulary when every row allows a few tokens, as a program's grammar does outside its strings.
Here such a row is filled with -inf at once and its allowed logits are put back (3.5 ms for those
229 rows). The other rows, those that allow most tokens (inside a string, 270 tokens of 32000 are
forbidden), stay with xgrammar's kernel, which is quick there (1 ms for 229 rows) and quicker than
unpacking their forbidden tokens here. A batch of rows at every position of a chunk program: 16.5 ms
with the kernel alone, 3 ms so. Same result as the kernel alone (tests/test_token_mask.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

FORBIDDEN = float("-inf")
Rows = Sequence[int] | torch.Tensor | None  # what vLLM passes as indices: a list on a CPU


def apply_token_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, indices: Rows,
                        kernel: Callable[..., None]) -> None:
    """Masks `logits` (rows, vocabulary; float, on the CPU) in place with `bitmask` (rows, words;
    int32), row `i` of one with row `i` of the other, for every row or the rows in `indices`, as
    xgrammar.apply_token_bitmask_inplace (`kernel`) does: rows that forbid more words than they
    allow here, the others by `kernel(logits, bitmask, indices=rows)`. Tensors that are not what
    vLLM passes (2-D, contiguous logits, an int32 mask, rows that exist) go to `kernel` whole, which
    says what is wrong with them."""
    rows = _rows(logits, bitmask, indices)
    if rows is None:
        kernel(logits, bitmask, indices=indices)
        return
    words = bitmask.numpy()[rows]
    allowing = words != 0  # words with an allowed token
    few = allowing.sum(axis=1) * 2 < words.shape[1]
    if few.any():
        _mask_whole_rows(logits, words[few], allowing[few], rows[few])
    if not few.all():
        kernel(logits, bitmask, indices=rows[~few].tolist())


def _rows(logits: torch.Tensor, bitmask: torch.Tensor, indices: Rows) -> np.ndarray | None:
    """The rows to mask, or None where the tensors are not what vLLM passes."""
    if logits.dim() != 2 or bitmask.dim() != 2 or bitmask.dtype != torch.int32 or not logits.is_contiguous():
        return None
    if indices is None:
        return np.arange(len(bitmask)) if len(bitmask) == len(logits) else None
    rows = np.asarray(indices, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= min(len(bitmask), len(logits))):
        return None
    return rows


def _mask_whole_rows(logits: torch.Tensor, words: np.ndarray, allowing: np.ndarray, rows: np.ndarray) -> None:
    """-inf in `rows` of `logits` but at the tokens their `words` allow (below the vocabulary: the
    narrower of the logits and the mask), which keep their logits."""
    row, word = np.nonzero(allowing)
    bits = np.unpackbits(words[row, word].astype("<i4").view(np.uint8).reshape(-1, 4), axis=1, bitorder="little")
    which, bit = np.nonzero(bits)
    token = word[which] * 32 + bit
    vocab = min(logits.shape[1], words.shape[1] * 32)
    below = token < vocab
    flat, target = logits.view(-1), logits[:, :vocab]  # past the mask, a padded vocabulary: left as it is
    allowed_at = torch.from_numpy(rows[row[which][below]] * logits.shape[1] + token[below])
    allowed = flat[allowed_at]
    if np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):  # mostly, a run
        target[rows[0]:rows[0] + len(rows)].fill_(FORBIDDEN)
    else:
        target.index_fill_(0, torch.from_numpy(rows), FORBIDDEN)
    flat[allowed_at] = allowed

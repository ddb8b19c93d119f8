"""prox.engines.token_mask masks logits as xgrammar's own CPU kernel alone does (the one vLLM calls), bit
for bit: rows that allow a few tokens, rows that forbid a few, rows that allow everything, mixed
batches, some rows only (indices), logits wider than the mask (a padded vocabulary) and narrower,
bfloat16; rows that allow most tokens go to the kernel, and tensors vLLM never passes go to it whole,
untouched."""

import numpy as np
import pytest
import torch

from prox.engines.token_mask import apply_token_bitmask

xgrammar = pytest.importorskip("xgrammar", reason="xgrammar comes with vLLM's CPU build (make test installs it)")

ROWS, VOCAB = 12, 32000
WORDS = (VOCAB + 31) // 32


def masks() -> dict[str, torch.Tensor]:
    generator = np.random.default_rng(7)
    few = np.zeros((ROWS, WORDS), dtype=np.int32)
    few[:, 3] = 0b1011
    few[np.arange(ROWS), generator.integers(0, WORDS, ROWS)] |= np.int32(-(2**31))  # the sign bit too
    few[:, -1] = -1  # the last word's tokens, some past a narrow vocabulary
    many = np.full((ROWS, WORDS), -1, dtype=np.int32)
    many[:, 0] = 0
    many[:, 17] = np.int32(~(1 << 5))
    mixed = few.copy()
    mixed[::2] = many[::2]
    mixed[::5] = -1
    return {name: torch.from_numpy(mask) for name, mask in
            {"few": few, "many": many, "mixed": mixed, "all": np.full((ROWS, WORDS), -1, dtype=np.int32),
             "none": np.zeros((ROWS, WORDS), dtype=np.int32)}.items()}


@pytest.mark.parametrize("width", [VOCAB, VOCAB + 7, VOCAB - 5])
@pytest.mark.parametrize("indices", [None, [1, 4, 9], [9, 0, 5], [2, 2, 3], []])
@pytest.mark.parametrize("name", ["few", "many", "mixed", "all", "none"])
@pytest.mark.filterwarnings("ignore:The bitmask covers only")  # xgrammar's, for the padded vocabulary
def test_the_same_logits_as_xgrammars_kernel(name, indices, width):
    logits = torch.randn(ROWS, width, generator=torch.Generator().manual_seed(3))
    theirs, ours = logits.clone(), logits.clone()
    xgrammar.apply_token_bitmask_inplace(theirs, masks()[name], indices=indices)
    apply_token_bitmask(ours, masks()[name], indices, xgrammar.apply_token_bitmask_inplace)
    assert torch.equal(theirs, ours)


def test_bfloat16_logits():
    logits = torch.randn(ROWS, VOCAB).to(torch.bfloat16)
    theirs, ours = logits.clone(), logits.clone()
    xgrammar.apply_token_bitmask_inplace(theirs, masks()["mixed"])
    apply_token_bitmask(ours, masks()["mixed"], None, xgrammar.apply_token_bitmask_inplace)
    assert torch.equal(theirs, ours)


class Kernel:
    """xgrammar's kernel, counting the calls it gets and the rows they name."""

    def __init__(self):
        self.calls = []

    def __call__(self, logits, bitmask, *, indices=None):
        self.calls.append(indices)
        xgrammar.apply_token_bitmask_inplace(logits, bitmask, indices=indices)


def test_rows_that_allow_most_tokens_go_to_xgrammars_kernel_and_the_others_not():
    logits, kernel = torch.randn(ROWS, VOCAB), Kernel()
    apply_token_bitmask(logits, masks()["mixed"], None, kernel)
    assert kernel.calls == [[0, 2, 4, 5, 6, 8, 10]]  # "many" (even rows) and allowing all (every fifth)
    apply_token_bitmask(logits, masks()["few"], [1, 3], kernel)
    assert len(kernel.calls) == 1


@pytest.mark.parametrize("case", ["1-D", "int64 mask", "fewer mask rows", "row -1", "row past", "a view"])
def test_tensors_vllm_never_passes_go_to_xgrammars_kernel_whole(case):
    """xgrammar's kernel masks them or says what is wrong with them."""
    logits, mask, indices = torch.randn(ROWS, VOCAB), masks()["few"], None
    if case == "1-D":
        logits, mask = logits[0], mask[0]
    elif case == "int64 mask":
        mask = mask.to(torch.int64)
    elif case == "fewer mask rows":
        mask = mask[:-1]
    elif case == "a view":
        logits = torch.randn(ROWS, VOCAB + 64)[:, :VOCAB]
    else:
        indices = [-1] if case == "row -1" else [ROWS]
    untouched, calls = logits.clone(), []
    apply_token_bitmask(logits, mask, indices, lambda *args, **named: calls.append((args, named)))
    assert calls == [((logits, mask), {"indices": indices})]
    assert torch.equal(logits, untouched)

"""The doc stage's decision as a probability: metadata.doc_drop_probability and --drop-threshold.

A refining model decides between dropping and keeping a document at its first token: the first
token of drop_doc() against the first token of keep_doc(), as the tokenizer writes the calls (for
the published refiners, "▁drop" and "▁keep" after "[/INST]"). The probability of dropping is the
model's probability of the first, normalised over the two, taken from its raw distribution (before
any grammar), so the engines agree on it and --constrained does not change it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prox.language import Language, load_language


@dataclass(frozen=True)
class DecisionTokens:
    drop_call: str  # drop_doc(): what prox writes when it decides to drop
    keep_call: str
    drop: int  # the first token id of drop_call
    keep: int

    @property
    def ids(self) -> tuple[int, int]:
        return self.drop, self.keep

    def drop_probability(self, logprobs: tuple[float, ...]) -> float:
        """P(drop) / (P(drop) + P(keep)) from the log-probabilities of (drop, keep)."""
        drop, keep = logprobs
        difference = keep - drop  # P = 1 / (1 + e^difference), computed without overflow
        if difference > 0:
            small = math.exp(-difference)
            return small / (1.0 + small)
        return 1.0 / (1.0 + math.exp(difference))


def decision_calls(language: Language | None = None) -> tuple[str, str]:
    """The doc level's calls that drop and keep a document."""
    level = (language or load_language()).level("doc")
    return level.call_making("DropDoc"), level.call_making("KeepDoc")


def decision_tokens(tokenizer, language: Language | None = None) -> DecisionTokens:
    """The decision tokens of a tokenizer; a ValueError if the two calls start with the same token."""
    drop_call, keep_call = decision_calls(language)
    drop, keep = (tokenizer.encode(call, add_special_tokens=False)[0] for call in (drop_call, keep_call))
    if drop == keep:
        raise ValueError(f"{drop_call} and {keep_call} start with the same token ({drop}) in this tokenizer, "
                         "so the first token does not decide between them")
    return DecisionTokens(drop_call, keep_call, drop, keep)

"""Prompts against a model's context: their token ids, and which ones cannot be served.

Both local engines turn every prompt into ids first, so that a prompt longer than the context is
recorded as that prompt's failure instead of failing a whole batch, and each generation can be
capped at the context's end (vLLM's behaviour, which the reference relied on).
"""

from __future__ import annotations

from prox.engines.base import Completion, Prompt
from prox.engines.models import encode_texts


def prompt_ids(tokenizer, prompts: list[Prompt]) -> list[list[int]]:
    """Token ids of every prompt: ids as given, texts tokenized in one batched call with the
    tokenizer's default special tokens (what an engine does with a text prompt)."""
    texts = [i for i, p in enumerate(prompts) if p.ids is None]
    encoded = encode_texts(tokenizer, [prompts[i].text for i in texts], special_tokens=True)
    ids = [list(p.ids) if p.ids is not None else [] for p in prompts]
    for i, prompt in zip(texts, encoded, strict=True):
        ids[i] = prompt
    return ids


def fit_to_context(ids: list[list[int]], context: int) -> tuple[list[Completion | None], list[int]]:
    """(a failed Completion for each prompt that leaves no room to generate, else None; the indexes
    of the prompts that fit)."""
    completions: list[Completion | None] = [None] * len(ids)
    servable = []
    for i, prompt in enumerate(ids):
        if len(prompt) >= context:
            completions[i] = Completion("", len(prompt), 0, error=f"prompt of {len(prompt)} tokens does not fit "
                                        f"the model's context of {context}")
        else:
            servable.append(i)
    return completions, servable

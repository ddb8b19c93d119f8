"""The engine interface: prompts in, generated texts out. The pipeline knows nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Prompt:
    """A prompt as token ids (sent as they are) or as text (tokenized by the engine with its
    tokenizer's default special tokens)."""

    ids: tuple[int, ...] | None = None
    text: str | None = None


@dataclass(frozen=True)
class GenerationSettings:
    """Greedy decoding up to max_new_tokens, stopping at EOS (the reference's settings)."""

    max_new_tokens: int


@dataclass(frozen=True)
class Completion:
    text: str  # the generated text, stripped of spaces as the reference does; "" on failure
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None  # why no text was generated (e.g. a prompt longer than the context)


class Engine(Protocol):
    """Generates one completion per prompt, in order. Raises only for failures of the whole engine;
    a prompt it cannot serve gets a Completion with `error` set."""

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]: ...


@dataclass(frozen=True)
class EngineSpec:
    """What it takes to build an engine inside a task (engines hold models and cannot be pickled)."""

    kind: str  # "transformers"
    model: str
    options: dict = field(default_factory=dict)

    def create(self) -> Engine:
        if self.kind == "transformers":
            from prox.engines.transformers_engine import TransformersEngine

            return TransformersEngine(self.model, **self.options)
        raise ValueError(f"unknown engine {self.kind!r}")

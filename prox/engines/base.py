"""The engine interface: prompts in, generated texts out. The pipeline knows nothing else."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Prompt:
    """A prompt as token ids (sent as they are) or as text (tokenized by the engine with its
    tokenizer's default special tokens). `subject` is the text the prompt presents (the whole
    document at the doc stage, the chunk's numbered lines at the chunk stage), for engines that
    read text rather than tokens, like the rules engine. `grammar` (llguidance's Lark syntax,
    prox/language/grammar.py), when set, is what the output must follow (--constrained).
    `messages` (role and content of each chat message): a chat prompt, which only a chat server renders
    (the openai engine sends it to /v1/chat/completions); prox annotate's teacher asks this way."""

    ids: tuple[int, ...] | None = None
    text: str | None = None
    subject: str | None = None
    grammar: str | None = None
    messages: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class GenerationSettings:
    """Greedy decoding up to max_new_tokens, stopping at EOS (the reference's settings).
    `scored_tokens`: token ids whose log-probabilities at the first generated position each
    Completion reports, from the model's raw distribution (before any grammar): the doc stage's
    decision tokens (prox/prompts/decisions.py)."""

    max_new_tokens: int
    scored_tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class Completion:
    text: str  # the generated text, stripped of spaces as the reference does; "" on failure
    prompt_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None  # why no text was generated (e.g. a prompt longer than the context)
    scores: tuple[float, ...] | None = None  # log-probabilities of the settings' scored_tokens, in order


class EngineError(Exception):
    """The engine cannot go on (a server that stays down, a dead GPU): the task fails before its
    shard is committed, and a rerun resumes it. A prompt the engine cannot serve is not this: it
    gets a Completion with `error` set."""


class Engine(Protocol):
    """Generates one completion per prompt, in order. Raises EngineError only for failures of the
    whole engine."""

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]: ...


ENGINES = {
    "transformers": "prox.engines.transformers_engine:TransformersEngine",
    "vllm": "prox.engines.vllm_engine:VLLMEngine",
    "openai": "prox.engines.openai_engine:OpenAIEngine",
    "rules": "prox.engines.rules_engine:RulesEngine",
}


@dataclass(frozen=True)
class EngineSpec:
    """What it takes to build an engine inside a task (engines hold models and cannot be pickled).
    `tokenizer` builds the prompts; it is the model's own unless given (the rules engine has no
    model and chunks with the bundled Llama-2 tokenizer)."""

    kind: str  # a key of ENGINES
    model: str
    options: dict = field(default_factory=dict)
    tokenizer: str | None = None

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer or self.model

    @property
    def reads_subject(self) -> bool:
        """Whether the engine reads each prompt's subject rather than the prompt (the rules engine):
        then doc-stage prompts need not be rendered and tokenized at all."""
        return self.kind == "rules"

    def create(self) -> Engine:
        if self.kind not in ENGINES:
            raise ValueError(f"unknown engine {self.kind!r}; known: {', '.join(ENGINES)}")
        module, name = ENGINES[self.kind].split(":")
        return getattr(importlib.import_module(module), name)(self.model, **self.options)

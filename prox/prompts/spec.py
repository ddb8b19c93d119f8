"""Loads the prompt pieces of a domain from programs/prompts/<domain>.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class ChatFormat:
    inst_open: str
    sys_open: str
    sys_close: str
    inst_close: str


@dataclass(frozen=True)
class DocStage:
    user_template: str
    truncate_prompt_tokens: int
    max_new_tokens: int


@dataclass(frozen=True)
class ChunkStage:
    line_template: str
    chunk_tokens: int
    user_template: str
    max_new_tokens: int


@dataclass(frozen=True)
class PromptSpec:
    domain: str
    doc_model: str
    chunk_model: str
    system_message: str
    chat: ChatFormat
    doc: DocStage
    chunk: ChunkStage


def known_domains() -> list[str]:
    folder = resources.files("prox.programs").joinpath("prompts")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read(domain: str) -> dict:
    path = resources.files("prox.programs").joinpath("prompts", f"{domain}.yaml")
    if not path.is_file():
        raise ValueError(f"unknown domain {domain!r}; known: {', '.join(known_domains())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if "extends" in raw:
        raw = _read(raw.pop("extends")) | raw
    return raw


@cache
def load_prompts(domain: str = "web") -> PromptSpec:
    """The prompt pieces of `domain` ("web" or "math"); a domain may extend another."""
    raw = _read(domain)
    return PromptSpec(
        domain=raw["domain"],
        doc_model=raw["models"]["doc"],
        chunk_model=raw["models"]["chunk"],
        system_message=raw["system_message"],
        chat=ChatFormat(**raw["chat_format"]),
        doc=DocStage(**raw["doc"]),
        chunk=ChunkStage(**raw["chunk"]),
    )

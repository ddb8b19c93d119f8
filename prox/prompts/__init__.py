"""ProX prompts: the pieces of each domain (programs/prompts/) and the builder of both stages."""

from prox.prompts.builder import ChunkPrompt, PromptBuilder, pack_lines
from prox.prompts.spec import PromptSpec, load_prompts

__all__ = ["ChunkPrompt", "PromptBuilder", "PromptSpec", "load_prompts", "pack_lines"]

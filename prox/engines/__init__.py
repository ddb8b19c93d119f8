"""Engines behind one small interface: prompts in, generated texts out."""

from prox.engines.base import Completion, Engine, EngineSpec, GenerationSettings, Prompt
from prox.engines.models import ModelNotFoundError, load_tokenizer

__all__ = ["Completion", "Engine", "EngineSpec", "GenerationSettings", "ModelNotFoundError", "Prompt",
           "load_tokenizer"]

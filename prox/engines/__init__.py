"""Engines behind one small interface: prompts in, generated texts out."""

from prox.engines.base import ENGINES, Completion, Engine, EngineError, EngineSpec, GenerationSettings, Prompt
from prox.engines.models import BUNDLED_TOKENIZER, ModelNotFoundError, load_tokenizer

__all__ = ["BUNDLED_TOKENIZER", "ENGINES", "Completion", "Engine", "EngineError", "EngineSpec", "GenerationSettings",
           "ModelNotFoundError", "Prompt", "load_tokenizer"]

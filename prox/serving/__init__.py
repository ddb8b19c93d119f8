"""`prox serve`: an OpenAI-compatible completions server over the transformers engine."""

from prox.serving.server import CompletionServer, MicroBatcher, serve

__all__ = ["CompletionServer", "MicroBatcher", "serve"]

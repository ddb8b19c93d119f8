"""Finding a refining model or tokenizer, with a clear message when it cannot be had."""

from __future__ import annotations

import os
from importlib import resources

# The published refiners' tokenizer, shipped with prox (programs/tokenizers/llama2).
BUNDLED_TOKENIZER = str(resources.files("prox.programs").joinpath("tokenizers", "llama2"))


class ModelNotFoundError(Exception):
    pass


def load_tokenizer(model: str):
    """The tokenizer of `model` (a local folder or a hub name)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(model)
    except Exception as error:
        raise ModelNotFoundError(not_found_message(model, error)) from error


def encode_texts(tokenizer, texts: list[str], special_tokens: bool) -> list[list[int]]:
    """Token ids of many texts in one call: with a Rust ("fast") tokenizer, its batched encoding
    without offsets or attention masks, which prox never reads (the same ids, a third less CPU);
    otherwise the tokenizer's own call."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    # a call with truncation or padding (transformers leaves them set on the Rust tokenizer) needs
    # the tokenizer's own call, which resets them
    if hasattr(backend, "encode_batch_fast") and backend.truncation is None and backend.padding is None:
        return [encoding.ids for encoding in backend.encode_batch_fast(texts, add_special_tokens=special_tokens)]
    return tokenizer(texts, add_special_tokens=special_tokens)["input_ids"]


def not_found_message(model: str, error: Exception) -> str:
    if os.path.isdir(model):
        return f"cannot load the model in {model}: {error}"
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        return f"no model folder at {model}; pass a folder saved with save_pretrained (--doc-model / --chunk-model)"
    return (f"model {model!r} is not a local folder and could not be loaded from the Hugging Face hub "
            f"({type(error).__name__}). Download it where there is network access, e.g. "
            f"`huggingface-cli download {model} --local-dir models/{model.split('/')[-1]}`, "
            f"and pass that folder (--doc-model / --chunk-model).")

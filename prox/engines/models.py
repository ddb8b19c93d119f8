"""Finding a refining model or tokenizer, with a clear message when it cannot be had."""

from __future__ import annotations

import functools
import os
from importlib import resources

# The published refiners' tokenizer, shipped with prox (programs/tokenizers/llama2).
BUNDLED_TOKENIZER = str(resources.files("prox.programs").joinpath("tokenizers", "llama2"))


class ModelNotFoundError(Exception):
    pass


def load_tokenizer(model: str):
    """The tokenizer of `model` (a local folder or a hub name). The published refiners' is bundled, so
    a dry run of the default models needs no network; a hub name that is not cached fails at once
    when the hub cannot be reached, instead of after the hub client's retries."""
    from transformers import AutoTokenizer

    if model in published_models():
        model = BUNDLED_TOKENIZER
    try:
        check_model(model, "tokenizer_config.json")
        return AutoTokenizer.from_pretrained(model)
    except ModelNotFoundError:
        raise
    except Exception as error:
        raise ModelNotFoundError(not_found_message(model, error)) from error


@functools.cache
def published_models() -> frozenset[str]:
    """The published refiners of every domain (programs/prompts/): their tokenizer is the bundled one."""
    from prox.prompts.spec import known_domains, load_prompts

    return frozenset(name for domain in known_domains() for name in (load_prompts(domain).doc_model,
                                                                      load_prompts(domain).chunk_model))


def is_cached(model: str, filename: str = "tokenizer_config.json") -> bool:
    """Whether the hub client has `model`'s file (by default its tokenizer's) in its local cache."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(model, filename), str)
    except ValueError:  # not a repository name
        return False


def check_model(model: str, filename: str = "config.json") -> None:
    """Raises ModelNotFoundError at once when `model` is neither a folder nor has `filename` cached
    and the hub cannot be reached; the model's own loading would retry for most of a minute first."""
    if not os.path.isdir(model) and not is_cached(model, filename):
        check_hub(model)


@functools.cache
def check_hub(model: str) -> None:
    """Raises ModelNotFoundError when `model` cannot come from the Hugging Face hub: a name that is a
    path, HF_HUB_OFFLINE set, or a hub that does not answer from here (one request, 5 s; a proxy's
    refusal counts as no answer)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise ModelNotFoundError(not_found_message(model, FileNotFoundError(model)))
    why = "HF_HUB_OFFLINE is set" if constants.is_offline_mode() else None
    if why is None:
        try:
            status = get_session().head(constants.ENDPOINT, timeout=5).status_code
            why = f"HTTP {status}" if status >= 400 and status not in (404, 405) else None
        except Exception as error:  # no route, no name resolution
            why = type(error).__name__
    if why is not None:
        raise ModelNotFoundError(f"model {model!r} is not a local folder, and the Hugging Face hub "
                                 f"({constants.ENDPOINT}) cannot be reached from here ({why}). Download it where "
                                 f"there is network access, e.g. `huggingface-cli download {model} --local-dir "
                                 f"models/{model.split('/')[-1]}`, and pass that folder (--doc-model / --chunk-model).")


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

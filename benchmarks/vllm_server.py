"""A small random Llama that vLLM's CPU build serves, and vLLM's OpenAI server for it on localhost:
shared by the vLLM tests and the HTTP concurrency benchmark."""

from __future__ import annotations

from pathlib import Path

from prox.engines.vllm_server import VLLMServer, server_args

CONTEXT = 640


def vllm_ready_llama(folder: Path, context: int = CONTEXT) -> None:
    """2 layers, head size 64 (vLLM's CPU attention refuses 16), a 640-token context: random weights
    seldom write EOS, so each doc program runs to the context's end, and a short context keeps the
    runs short; every chunk prompt of a short document still fits with its 256 new tokens. Large
    initial weights give wide logit margins, so greedy decoding picks the same tokens under vLLM's
    kernels and transformers'. Benchmarks give it the refiners' 2048-token context."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from prox.engines import BUNDLED_TOKENIZER

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=context,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, initializer_range=0.5,
                         torch_dtype="float32")
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER).save_pretrained(folder)


def tiny_server(model: Path, log: Path, memory_share: float, *extra: str) -> VLLMServer:
    """vLLM's OpenAI server (prox's launcher) for the model above: float32, its 640-token context, no
    graph compilation."""
    args = server_args("float32", memory_share, max_model_len=CONTEXT, enforce_eager=True)
    return VLLMServer(str(model), log, [*args, *extra])

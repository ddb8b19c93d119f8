"""Small Llamas that vLLM's CPU build serves (a random one, and one that writes a given program), and
vLLM's OpenAI server for them on localhost: shared by the tests and the benchmarks."""

from __future__ import annotations

import itertools
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


def chain_llama(folder: Path, tokenizer, program: str, context: int = 4096, layers: int = 1,
                hidden: int = 128) -> Path:
    """A real Llama that writes `program` after any prompt ending in "]" (as "[/INST]" does), then
    stops: its layers (computed in full) add nothing to the embeddings, so each token alone picks the
    next, and the output layer is set so that each token of the program picks the one after it (each
    token may appear once). Head size 64, so vLLM's CPU build serves it too."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    chain = [tokenizer.convert_tokens_to_ids("]"), *tokenizer.encode(program, add_special_tokens=False),
             tokenizer.eos_token_id]
    if len(set(chain)) != len(chain):
        raise ValueError(f"a token appears twice in {program!r}")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=hidden, intermediate_size=hidden * (1 if hidden <= 128 else 3),
                         num_hidden_layers=layers, num_attention_heads=hidden // 64,
                         num_key_value_heads=hidden // 64, max_position_embeddings=context,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, torch_dtype="float32")
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight
        for token, following in itertools.pairwise(chain):
            model.lm_head.weight[following] = 5.0 * embeddings[token] / embeddings[token].norm()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_server(model: Path, log: Path, memory_share: float, *extra: str) -> VLLMServer:
    """vLLM's OpenAI server (prox's launcher) for the model above: float32, its 640-token context, no
    graph compilation."""
    args = server_args("float32", memory_share, max_model_len=CONTEXT, enforce_eager=True)
    return VLLMServer(str(model), log, [*args, *extra])

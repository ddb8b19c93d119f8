"""The vLLM engine on a GPU: same programs as the transformers engine for the same greedy model,
and a prompt longer than the context is a recorded failure, not a crash. Skipped without a CUDA
GPU and vLLM (CI has neither); run them on a GPU machine with `pytest -m gpu`."""

import importlib.util

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import TOKENIZER, read_output, run_prox, sample_rows


def _gpu_with_vllm() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _gpu_with_vllm(), reason="needs a CUDA GPU and vLLM")]


@pytest.fixture(scope="module")
def gpu_model(tmp_path_factory):
    """A small random Llama with the refiners' tokenizer. Large initial weights give wide logit
    margins, so greedy decoding picks the same tokens under vLLM's and transformers' kernels."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=4096,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, initializer_range=0.5,
                         torch_dtype="float32")
    folder = tmp_path_factory.mktemp("gpu-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(TOKENIZER).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    rows = [{"id": r["id"], "text": r["text"]} for r in sample_rows()[:12]]
    folder = tmp_path_factory.mktemp("gpu-input")
    pq.write_table(pa.Table.from_pylist(rows), folder / "shard.parquet")
    return folder


def programs(out):
    kept, dropped = read_output(out)
    return {row["id"]: (row["metadata"].get("doc_program"), row["metadata"].get("chunk_program"), row["text"])
            for row in kept + dropped}


def test_vllm_writes_the_programs_of_the_transformers_engine(gpu_model, shard, tmp_path):
    common = ("refine", "--input", str(shard), "--doc-model", str(gpu_model), "--chunk-model", str(gpu_model),
              "--dtype", "float32", "--batch-size", "6")
    run_prox(*common, "--output", str(tmp_path / "vllm"), "--engine", "vllm", "--gpu-memory-utilization", "0.5")
    run_prox(*common, "--output", str(tmp_path / "hf"), "--engine", "transformers", "--device", "cuda")
    assert programs(tmp_path / "vllm") == programs(tmp_path / "hf")


def test_a_prompt_longer_than_the_context_is_a_recorded_failure(gpu_model):
    from prox.engines import GenerationSettings, Prompt
    from prox.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(str(gpu_model), dtype="float32", gpu_memory_utilization=0.3, max_model_len=1024)
    prompts = [Prompt(ids=(1, 100, 200)), Prompt(ids=tuple([1] + [500] * 2000)), Prompt(text="[doc]\n[000]hi\n[/doc]")]
    completions = engine.generate(prompts, GenerationSettings(max_new_tokens=8))
    assert [c.error is None for c in completions] == [True, False, True]
    assert "does not fit the model's context of 1024" in completions[1].error
    assert completions[0].output_tokens > 0 and completions[2].output_tokens > 0

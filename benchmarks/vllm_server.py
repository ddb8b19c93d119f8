"""A small random Llama that vLLM's CPU build serves, and vLLM's OpenAI server on localhost: shared by
the vLLM tests and the HTTP concurrency benchmark."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CONTEXT = 640


def vllm_ready_llama(folder: Path) -> None:
    """2 layers, head size 64 (vLLM's CPU attention refuses 16), a 640-token context: random weights
    seldom write EOS, so each doc program runs to the context's end, and a short context keeps the
    runs short; every chunk prompt of a short document still fits with its 256 new tokens. Large
    initial weights give wide logit margins, so greedy decoding picks the same tokens under vLLM's
    kernels and transformers'."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from prox.engines import BUNDLED_TOKENIZER

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32000, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=CONTEXT,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False, initializer_range=0.5,
                         torch_dtype="float32")
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(BUNDLED_TOKENIZER).save_pretrained(folder)


class VLLMServer:
    """vLLM's OpenAI-compatible server on a free localhost port, started at once, waited for on use."""

    def __init__(self, model: Path, log: Path, *extra: str):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
                   "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", "--max-model-len", str(CONTEXT),
                   "--enforce-eager", "--seed", "0", *extra]
        with open(log, "wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, seconds: float = 600) -> str:
        """The server's URL once `GET /v1/models` answers; RuntimeError, with its log, if it never does."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the vLLM server exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=5) as answer:
                    if answer.status == 200:
                        return self.url
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"the vLLM server did not answer in {seconds} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

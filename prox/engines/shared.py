"""One engine per model in a process: stages and tasks that name the same engine share it.

Starting an engine is the slow part of a short run (vLLM takes half a minute on a CPU, a model
load on a GPU), and two copies of one model waste the GPU's memory. So the doc and chunk stages
share the engine when they name the same model with the same options (a refiner trained for both
stages), and the tasks that one process runs one after another reuse it instead of starting it
again. Each stage calls its engine from a thread of its own, so calls to a shared engine take
turns, unless the engine says it serves concurrent calls (`concurrent_calls = True`, as the HTTP
engine does: both stages' requests are then in flight together).
"""

from __future__ import annotations

import contextlib
import threading

import orjson

from prox.engines.base import Completion, Engine, EngineSpec, GenerationSettings, Prompt

_engines: dict[bytes, SharedEngine] = {}
_starting: dict[bytes, threading.Lock] = {}
_registry = threading.Lock()


class SharedEngine:
    """An engine whose calls take turns."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._turn = contextlib.nullcontext() if getattr(engine, "concurrent_calls", False) else threading.Lock()

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]:
        with self._turn:
            return self.engine.generate(prompts, settings)


def shared_engine(spec: EngineSpec) -> SharedEngine:
    """The process's engine for `spec`, started on first use. A start that fails is tried again
    by the next caller."""
    key = orjson.dumps([spec.kind, spec.model, spec.tokenizer, spec.options], option=orjson.OPT_SORT_KEYS)
    with _registry:
        starting = _starting.setdefault(key, threading.Lock())
    with starting:  # one start per engine; other engines start meanwhile
        if key not in _engines:
            _engines[key] = SharedEngine(spec.create())
        return _engines[key]

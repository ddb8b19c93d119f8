"""Teachers answer annotation requests: a chat model on an OpenAI-compatible server, or the rules.

A teacher gets TeacherRequests and returns one Completion each, in order (the engine interface's
Completion: the answer's text, or why there is none). The chat teacher sends each request's
messages through the openai engine (its retries, concurrency and failure policy); the rules teacher
answers offline from the request's subject, in the words a chat teacher is asked to use, so both go
through the same checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prox.annotation.teacher_prompts import TeacherPrompt
from prox.engines.base import Completion, GenerationSettings, Prompt
from prox.engines.rules import chunk_calls, failed_rule, numbered_lines
from prox.execution import MEASURING, execute_programs
from prox.language import DropDoc, KeepChunk


@dataclass(frozen=True)
class TeacherRequest:
    prompt: TeacherPrompt
    subject: str  # the document (doc_scores), or the chunk's numbered lines as refine's prompt shows them
    plain: str = ""  # chunk_rewrite: the chunk's lines without their numbers, which the teacher rewrites
    ends_document: bool = True  # the chunk holds the document's last line

    @property
    def messages(self) -> tuple[tuple[str, str], ...]:
        return self.prompt.messages(self.plain if self.prompt.task == "chunk_rewrite" else self.subject)


class Teacher(Protocol):
    name: str

    def answer(self, requests: list[TeacherRequest]) -> list[Completion]: ...


class ChatTeacher:
    """A chat model behind an OpenAI-compatible server (e.g. `vllm serve` of a 70B instruct model)."""

    def __init__(self, model: str, endpoint: str, api_key: str | None = None, concurrency: int = 64,
                 timeout: float = 600.0, retries: int = 5):
        from prox.engines.openai_engine import OpenAIEngine

        self.name = model
        self.engine = OpenAIEngine(model, endpoint, api_key=api_key, concurrency=concurrency, timeout=timeout,
                                   retries=retries)

    def answer(self, requests: list[TeacherRequest]) -> list[Completion]:
        answers: list[Completion | None] = [None] * len(requests)
        for max_tokens in sorted({r.prompt.max_tokens for r in requests}):  # one call per answer length
            positions = [i for i, r in enumerate(requests) if r.prompt.max_tokens == max_tokens]
            prompts = [Prompt(messages=requests[i].messages) for i in positions]
            for i, completion in zip(positions, self.engine.generate(prompts, GenerationSettings(max_tokens)),
                                     strict=True):
                answers[i] = completion
        return answers

    def close(self) -> None:
        self.engine.close()


class RulesTeacher:
    """The heuristic filters and line rules of the rules engine as a teacher (offline; a baseline).
    Doc scores: 3 and 3 for a document that passes every filter, 1 and 1 for one that fails (the
    default label rule keeps the first and drops the second). Programs: the line rules' calls of the
    prompt's kind (the prompt file's `rules`). Rewrites: the chunk with all the rules' calls applied."""

    name = "rules"

    def answer(self, requests: list[TeacherRequest]) -> list[Completion]:
        calls = functools.cache(chunk_calls)  # each kind's prompt asks about the same chunk: its rules run once
        return [Completion(self._answer(request, calls)) for request in requests]

    def _answer(self, request: TeacherRequest, calls_of: Callable) -> str:
        task = request.prompt.task
        if task == "doc_scores":
            failure = failed_rule(request.subject)
            points = 1 if failure else 3
            why = f"{DropDoc(1, 'drop_doc').call} by {failure[0]}: {failure[1]}" if failure else "passes every filter"
            return f"The rules find that it {why}.\nEducational score: {points}\nFormat score: {points}"
        calls = calls_of(request.subject, request.ends_document)
        if task == "chunk_programs":
            wanted = set(request.prompt.rules)
            return "\n".join(call for call, names in calls if names[0] in wanted) or KeepChunk(1, "keep_chunk").call
        program = "\n".join(call for call, _ in calls)
        numbered = numbered_lines(request.subject)
        offset = "\n" * numbered[0][0]  # the calls name the document's line numbers
        cleaned = execute_programs(offset + "\n".join(line for _, line in numbered), None, program,
                                   MEASURING)
        return "[clean]\n" + cleaned.text[len(offset):] + "\n[/clean]"


@dataclass(frozen=True)
class TeacherSpec:
    """What it takes to build a teacher inside a task (a chat teacher holds connections and cannot be
    pickled). The chat teacher's key comes from the environment (PROX_API_KEY or OPENAI_API_KEY)."""

    kind: str = "chat"  # "chat" or "rules"
    model: str = ""
    endpoint: str = ""
    concurrency: int = 64
    timeout: float = 600.0
    retries: int = 5

    def create(self) -> Teacher:
        if self.kind == "rules":
            return RulesTeacher()
        return ChatTeacher(self.model, self.endpoint, concurrency=self.concurrency, timeout=self.timeout,
                           retries=self.retries)

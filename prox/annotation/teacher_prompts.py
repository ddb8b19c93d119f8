"""The teacher's prompts, one file each in programs/teacher/: what they ask, in which language."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

TASKS = ("doc_scores", "chunk_programs", "chunk_rewrite")


@dataclass(frozen=True)
class TeacherPrompt:
    name: str
    task: str  # one of TASKS
    language: str  # the language the prompt is written in
    system: str
    user: str  # with {text} (doc_scores) or {chunk} (chunk tasks) where the subject goes
    max_tokens: int
    kind: str = ""  # the kind of noise a chunk_programs prompt looks for
    rules: tuple[str, ...] = ()  # the rules teacher's line rules that answer this kind
    document_chars: int = 0  # the teacher reads at most this many characters of a document (0: all)

    def messages(self, subject: str) -> tuple[tuple[str, str], ...]:
        """The chat messages that ask about `subject` (a document, or a chunk's lines)."""
        if self.document_chars:
            subject = subject[: self.document_chars]
        slot = "{text}" if self.task == "doc_scores" else "{chunk}"
        return ("system", self.system), ("user", self.user.replace(slot, subject))


@cache
def load_teacher_prompts() -> dict[str, TeacherPrompt]:
    """Every prompt of programs/teacher/, by name."""
    folder = resources.files("prox.programs").joinpath("teacher")
    prompts = {}
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not path.name.endswith(".yaml"):
            continue
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["rules"] = tuple(raw.get("rules", ()))
        prompt = TeacherPrompt(**raw)
        if prompt.task not in TASKS:
            raise ValueError(f"{path.name}: task {prompt.task!r} is not one of {', '.join(TASKS)}")
        prompts[prompt.name] = prompt
    return prompts


def prompts_for(task: str) -> list[TeacherPrompt]:
    return [p for p in load_teacher_prompts().values() if p.task == task]

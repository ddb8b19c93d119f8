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
        if prompt.name in prompts:
            raise ValueError(f"{path.name}: another file of programs/teacher/ is already named {prompt.name!r}")
        prompts[prompt.name] = prompt
    return prompts


def prompts_for(task: str, language: str) -> list[TeacherPrompt]:
    """The prompts of `task` written in `language`."""
    return [p for p in load_teacher_prompts().values() if p.task == task and p.language == language]


def check_prompts(language: str, stages: tuple[str, ...], method: str) -> None:
    """Raises ValueError unless programs/teacher/ has what an annotation in `language` asks: one
    doc_scores prompt, and one chunk_rewrite prompt or chunk_programs prompts of distinct kinds."""
    needs = {"doc_scores": "doc" in stages, "chunk_rewrite": "chunk" in stages and method == "rewrite",
             "chunk_programs": "chunk" in stages and method == "programs"}
    for task, needed in needs.items():
        found = prompts_for(task, language)
        if needed and not found:
            raise ValueError(f"programs/teacher/ has no {task} prompt in language {language!r}: copy the English "
                             "one, translate it, and set its language")
        if needed and task != "chunk_programs" and len(found) > 1:
            raise ValueError(f"programs/teacher/ has {len(found)} {task} prompts in language {language!r}: "
                             f"{', '.join(p.name for p in found)}; keep one")
        kinds = [p.kind for p in found]
        if needed and task == "chunk_programs" and len(set(kinds)) != len(kinds):
            raise ValueError(f"two chunk_programs prompts in language {language!r} look for the same kind of noise")

"""The rules engine (`--engine rules`): heuristic filters write the programs instead of a model.

No model and no tokens: the engine reads each prompt's `subject` (the document at the doc stage,
the chunk's numbered lines at the chunk stage) and answers with a program of the ProX language,
each decision explained in a trailing comment. Deterministic and CPU only.
"""

from __future__ import annotations

from prox.engines.base import Completion, GenerationSettings, Prompt
from prox.engines.rules import chunk_program, doc_program, first_line_number

STAGES = ("doc", "chunk")


class RulesEngine:
    """`model` names the rule set: "doc" (document filters) or "chunk" (line rules)."""

    def __init__(self, model: str):
        if model not in STAGES:
            raise ValueError(f"the rules engine has the rule sets {', '.join(STAGES)}, not {model!r}")
        self.stage = model

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Completion]:
        """One program per prompt, in order. A chunk ends its document when the next prompt starts one
        (at line 0) or there is none: the pipeline sends each document's chunks together and in order."""
        completions = []
        for position, prompt in enumerate(prompts):
            if prompt.subject is None:
                completions.append(Completion("", error="the rules engine reads the prompt's subject; it has none"))
            elif self.stage == "doc":
                completions.append(Completion(doc_program(prompt.subject)))
            else:
                following = prompts[position + 1].subject if position + 1 < len(prompts) else None
                ends_document = following is None or first_line_number(following) == 0
                completions.append(Completion(chunk_program(prompt.subject, ends_document)))
        return completions

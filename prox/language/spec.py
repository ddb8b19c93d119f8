"""Loads the program language from programs/language.yaml into plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from prox.language.operations import OPERATION_TYPES, Operation, argument_names

ARG_TYPES = {"int": int, "str": str, "bool": bool}
UNSET = object()  # marks an argument without default or fixed value


@dataclass(frozen=True)
class ArgSpec:
    name: str
    type: str  # "int", "str" or "bool"
    python_type: type = object  # what the type name means in Python, filled in by the loader
    default: Any = UNSET
    min: int | None = None
    equals: Any = UNSET
    line: bool = False  # a 0-based line number of the document

    @property
    def required(self) -> bool:
        return self.default is UNSET


@dataclass(frozen=True)
class FormSpec:
    """One accepted signature of a function and the operation it builds."""

    operation: type[Operation]
    args: tuple[ArgSpec, ...]
    names: frozenset[str] = frozenset()  # the argument names, for binding keywords


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    forms: tuple[FormSpec, ...]
    counts_errors: bool = False

    def written_forms(self) -> list[tuple[FormSpec, int]]:
        """How prox writes a call of this function: keyword arguments in their order, ", " between them,
        all of a form's arguments or its first `given` ones (the rest optional, taking their defaults).
        Each (form, given) once, left out where an earlier form would take the same keywords (it binds
        first). The parser reads calls written so with one match; --constrained lets models write only these."""
        written = []
        for index, form in enumerate(self.forms):
            required = sum(arg.required for arg in form.args)
            for given in range(len(form.args), required - 1, -1):
                keywords = {arg.name for arg in form.args[:given]}
                if not any(keywords <= earlier.names and all(not a.required or a.name in keywords for a in earlier.args)
                           for earlier in self.forms[:index]):
                    written.append((form, given))
        return written


@dataclass(frozen=True)
class Limits:
    max_program_chars: int
    max_statements: int
    max_line_chars: int
    max_string_chars: int
    max_int: int
    growth_factor: float
    growth_extra_chars: int
    constrained_string_chars: int


@dataclass(frozen=True)
class Level:
    """The functions a model may call at one level (doc or chunk)."""

    name: str
    functions: dict[str, FunctionSpec]

    def call_making(self, operation: str) -> str:
        """The call without arguments that makes `operation` (a name of prox/language/operations.py):
        how prox writes a decision it made itself, e.g. drop_doc() for DropDoc."""
        for name, function in self.functions.items():
            if any(form.operation.__name__ == operation and not form.args for form in function.forms):
                return f"{name}()"
        raise ValueError(f"level {self.name!r} has no call without arguments that makes {operation}")


@dataclass(frozen=True)
class Language:
    limits: Limits
    levels: dict[str, Level]

    def level(self, name: str) -> Level:
        return self.levels[name]


def _arg(raw: dict) -> ArgSpec:
    if raw["type"] not in ARG_TYPES:
        raise ValueError(f"argument {raw['name']!r}: unknown type {raw['type']!r}")
    return ArgSpec(
        name=raw["name"],
        type=raw["type"],
        python_type=ARG_TYPES[raw["type"]],
        default=raw.get("default", UNSET),
        min=raw.get("min"),
        equals=raw.get("equals", UNSET),
        line=bool(raw.get("line", False)),
    )


def _form(function: str, raw: dict) -> FormSpec:
    op_name = raw["operation"]
    if op_name not in OPERATION_TYPES:
        raise ValueError(f"{function}: unknown operation {op_name!r}")
    op_type = OPERATION_TYPES[op_name]
    args = tuple(_arg(a) for a in raw.get("args") or [])
    fields = list(argument_names(op_type))
    if fields != [a.name for a in args]:
        raise ValueError(f"{function}: arguments {[a.name for a in args]} do not match {op_name} {fields}")
    return FormSpec(operation=op_type, args=args, names=frozenset(a.name for a in args))


def language_from_dict(raw: dict) -> Language:
    """Builds a Language from the parsed YAML, checking it against the operation types."""
    levels = {}
    for level_name, functions in raw["levels"].items():
        specs = {
            name: FunctionSpec(
                name=name,
                forms=tuple(_form(name, f) for f in body["forms"]),
                counts_errors=bool(body.get("counts_errors", False)),
            )
            for name, body in functions.items()
        }
        levels[level_name] = Level(name=level_name, functions=specs)
    return Language(limits=Limits(**raw["limits"]), levels=levels)


@cache
def load_language() -> Language:
    """The language shipped in programs/language.yaml (read once per process)."""
    text = resources.files("prox.programs").joinpath("language.yaml").read_text(encoding="utf-8")
    return language_from_dict(yaml.safe_load(text))

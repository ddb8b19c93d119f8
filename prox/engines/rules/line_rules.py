"""Line rules written as chunk-level programs: boilerplate lines removed, boilerplate fragments normalized away.

A chunk arrives as the prompt presents it, lines `[NNN]text` numbered over the whole document. Each
line is read once: LINE_RULES name lines that are boilerplate as a whole (cookie notices, sign-in
links, copyright footers...), FRAGMENT_RULES name boilerplate inside an otherwise good line (a
trailing "Read more »"), and the navigation rule removes runs of short lines without terminal
punctuation (menus, tag lists), which no single line gives away. Removals that touch, or are
separated only by blank lines, become one `remove_lines` call; the rule names go in its comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prox.engines.rules.text import ends_with_terminal_punctuation
from prox.language import KeepChunk, Normalize, RemoveLines

NAVIGATION = "navigation"
NAVIGATION_RUN = 3  # nav-like lines in a row that make a menu anywhere in the document
NAVIGATION_EDGE_RUN = 2  # ... at the document's start or end, where site chrome sits
MAX_FRAGMENT_CHARS = 300
_NUMBERED = re.compile(r"\[(\d{3,})\]")
_MENU_SEPARATOR = re.compile(r"\s+[|»›•·/]\s+|\s*\|\s*")
_LIST_ITEM = re.compile(r"(?:[-•*–▪]|\d{1,3}[.)])\s")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class LineRule:
    """A line that matches `pattern` (written for the lowercased line) and has at most `max_words` words
    is boilerplate as a whole."""

    name: str
    why: str
    pattern: re.Pattern
    max_words: int


@dataclass(frozen=True)
class FragmentRule:
    """Text matching `pattern` (any case) is boilerplate inside a line; it is normalized to nothing."""

    name: str
    why: str
    pattern: re.Pattern


# Patterns start with literal text where they can (not with \b): the regex engine then skips ahead fast.
LINE_RULES: tuple[LineRule, ...] = (
    LineRule("lorem_ipsum", "placeholder text", re.compile(r"lorem ipsum"), 10_000),
    LineRule("cookie_notice", "cookie notice", re.compile(
        r"(?:we|site) uses? cookies\b|cookies? (?:policy|settings|preferences|consent|notice)\b|use of cookies\b"
        r"|(?:accept|allow|enable|support)(?: all)? cookies\b|cookies (?:need|must|are required)\b"
        r"|cookies to (?:improve|give|ensure|provide|enhance|analy[sz]e)\b"), 60),
    LineRule("javascript_warning", "javascript warning", re.compile(
        r"(?:enable|requires?|turn on|activate|without) javascript\b|javascript (?:is|must be|has been|needs to be"
        r"|seems to be) (?:\w+ )?(?:enabled|disabled|turned off|required|not supported|off)\b"), 40),
    LineRule("subscription", "subscription or newsletter notice", re.compile(
        r"subscribe (?:to|for|now|today)\b|sign up (?:for|to) (?:our|the|my)\b|^get (?:e-?mail )?updates\b"
        r"|(?:subscribe|sign up|join|get|receive)\b.*\b(?:newsletters?|mailing list)\b|(?:enter|type) your e-?mail\b"
        r"|receive \w+ updates\b|sign up now\b"), 25),
    LineRule("social", "share, follow or comment links", re.compile(
        r"^(?:share|tweet|pin)(?: (?:this|it))?(?: (?:post|article|page|story))?\W*$|^(?:e-?mail|print) this\b"
        r"|share (?:this|on)\b|follow (?:us|me) on\b|like us on\b|^\d+ (?:shares?|comments?|likes?)$"
        r"|^(?:leave a (?:comment|reply)|no comments(?: yet)?|comments? \(\d+\))\W*$"), 20),
    LineRule("login", "sign-in or skip links", re.compile(
        r"^(?:log ?in|login|log ?out|sign ?in|sign ?up|sign ?out|register|my account|create (?:an )?account"
        r"|forgot(?: your)? password|lost your password)\b|^skip to\b|skip (?:to )?(?:main )?content\b"
        r"|(?:must|please) (?:first )?(?:log ?in|sign ?in)\b"), 12),
    LineRule("copyright", "copyright footer",
             re.compile(r"^(?:©|\(c\)|copyright\b)|all rights reserved|©\s*\d{4}"), 20),
    LineRule("policy_links", "privacy and terms links", re.compile(
        r"privacy policy|terms (?:of (?:use|service)|and conditions|& conditions)|disclaimer|site ?map\b"), 12),
    LineRule("read_more", "read-more link or cut-off teaser", re.compile(
        r"^(?:read|learn|see|find out|discover) more\b|^continue reading\b|^click here\b"
        r"|(?:\.\.\.|…)\s*(?:read more|continue reading)\W*$"), 60),
)

FRAGMENT_RULES: tuple[FragmentRule, ...] = (
    FragmentRule("read_more_tail", "read-more link after the text", re.compile(
        r"(?<=[.!?\"”])\s*\[?\s*(?:read more|continue reading|read (?:the )?full (?:story|article))"
        r"\s*(?:»|›|→|>>|\.\.\.|…|\])?\s*$", re.IGNORECASE)),
    FragmentRule("click_here_tail", "click-here call after the text",
                 re.compile(r"(?<=[.!?])\s+click here\b[^.!?]{0,200}[.!?]?\s*$", re.IGNORECASE)),
    FragmentRule("ad_script", "ad script residue", re.compile(
        r"\(\s*adsbygoogle\s*=\s*window\.adsbygoogle\s*\|\|\s*\[\s*\]\s*\)\s*\.push\(\s*\{\s*\}\s*\)\s*;?")),
    FragmentRule("email_protected", "e-mail protection residue", re.compile(r"\[email(?:\s|&#160;)protected\]")),
)


def line_rule(line: str, rules: tuple[LineRule, ...] = LINE_RULES) -> LineRule | None:
    """The first of `rules` that `line` (stripped) breaks, or None."""
    lower, word_count = line.lower(), len(line.split())
    return next((rule for rule in rules if word_count <= rule.max_words and rule.pattern.search(lower)), None)


def fragments(line: str) -> list[tuple[FragmentRule, str]]:
    """The boilerplate fragments of `line`, as (rule, exact text), without overlaps; a fragment is short
    (one longer than MAX_FRAGMENT_CHARS is not boilerplate, and would strain the language's string limit)."""
    found: list[tuple[FragmentRule, re.Match]] = []
    for rule in FRAGMENT_RULES:
        for match in rule.pattern.finditer(line):
            if (0 < len(match.group()) <= MAX_FRAGMENT_CHARS
                    and not any(match.start() < m.end() and m.start() < match.end() for _, m in found)):
                found.append((rule, match))
    return [(rule, match.group()) for rule, match in sorted(found, key=lambda f: f[1].start())]


def is_nav_like(line: str) -> bool:
    """A short line without terminal punctuation, or a bar of short items split by separators. A list
    item ("- Adobe InDesign", "2) Garnet") is content, whatever its length."""
    if not line or ends_with_terminal_punctuation(line) or _LIST_ITEM.match(line):
        return False
    if len(line) <= 30 or len(line.split()) <= 4:
        return True
    items = [item for item in _MENU_SEPARATOR.split(line) if item]
    return len(items) >= 3 and all(len(item.split()) <= 4 for item in items)


@dataclass
class _Line:
    index: int
    raw: str
    text: str = field(init=False)  # stripped
    removed_by: str | None = None  # a rule name
    fragments: list[tuple[FragmentRule, str]] = field(default_factory=list)

    def __post_init__(self):
        self.text = self.raw.strip()


def numbered_lines(subject: str) -> list[tuple[int, str]]:
    """(document line number, line) for each `[NNN]line` of a chunk as the prompt presents it."""
    lines = []
    for raw in subject.split("\n"):
        if match := _NUMBERED.match(raw):
            lines.append((int(match.group(1)), raw[match.end():]))
    return lines


def first_line_number(subject: str) -> int | None:
    """The document line number a chunk starts at."""
    match = _NUMBERED.match(subject)
    return int(match.group(1)) if match else None


def chunk_program(subject: str, ends_document: bool) -> str:
    """The program of one chunk. `ends_document`: the chunk holds the document's last line."""
    calls = [f"{call}  # {_comment(names)}" for call, names in chunk_calls(subject, ends_document)]
    return "\n".join(calls) or KeepChunk(1, "keep_chunk").call


def chunk_calls(subject: str, ends_document: bool) -> list[tuple[str, tuple[str, ...]]]:
    """The calls of one chunk's program, each with the names of the rules that made it."""
    lines = [_Line(index, raw) for index, raw in numbered_lines(subject)]
    for line in lines:
        if rule := line_rule(line.text):
            line.removed_by = rule.name
        elif found := fragments(line.raw):
            if _LETTER_OR_DIGIT.search(_without(line.raw, [text for _, text in found])):
                line.fragments = found
            else:  # nothing but boilerplate
                line.removed_by = found[0][0].name
    _mark_navigation(lines, starts_document=bool(lines) and lines[0].index == 0, ends_document=ends_document)
    calls = [_removal(group) for group in _removed_groups(lines)]
    sources: set[str] = set()
    for line in lines:
        for rule, text in [] if line.removed_by else line.fragments:
            if text not in sources:
                sources.add(text)
                calls.append((Normalize(1, "normalize", text, "").call, (rule.name,)))
    return calls


def _without(text: str, parts: list[str]) -> str:
    for part in parts:
        text = text.replace(part, "", 1)
    return text


def _mark_navigation(lines: list[_Line], starts_document: bool, ends_document: bool) -> None:
    """Marks runs of nav-like lines; blank lines and lines other rules removed neither count nor break a run."""
    run: list[_Line] = []
    at_start = starts_document
    for line in [*lines, None]:
        if line is not None and (not line.text or line.removed_by):
            continue
        if line is not None and is_nav_like(line.text):
            run.append(line)
            continue
        at_edge = at_start or (line is None and ends_document)
        if len(run) >= NAVIGATION_RUN or (at_edge and len(run) >= NAVIGATION_EDGE_RUN):
            for member in run:
                member.removed_by = NAVIGATION
        run, at_start = [], False


def _removed_groups(lines: list[_Line]) -> list[list[_Line]]:
    """Removed lines grouped where they are adjacent or only blank lines lie between them."""
    groups: list[list[_Line]] = []
    open_group = False
    gap: list[_Line] = []
    for line in lines:
        if line.removed_by:
            if open_group:
                groups[-1].extend([*gap, line])
            else:
                groups.append([line])
            open_group, gap = True, []
        elif open_group and not line.text:
            gap.append(line)
        else:
            open_group, gap = False, []
    return groups


_WHY = {rule.name: rule.why for rule in LINE_RULES + FRAGMENT_RULES} | {
    NAVIGATION: "short lines without terminal punctuation"}


def _removal(group: list[_Line]) -> tuple[str, tuple[str, ...]]:
    names = tuple(dict.fromkeys(line.removed_by for line in group if line.removed_by))
    return RemoveLines(1, "remove_lines", group[0].index, group[-1].index).call, names


def _comment(names: tuple[str, ...]) -> str:
    return f"{names[0]}: {_WHY[names[0]]}" if len(names) == 1 else ", ".join(names)

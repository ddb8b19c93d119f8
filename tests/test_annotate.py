"""prox annotate: prompts equal refine's, a chat teacher on localhost (good and broken answers), and
the rewrite method's deletion-only programs on real documents."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from completion_server import FakeServer
from conftest import ROOT, run_prox

from prox.annotation.chunk_programs import checked_example
from prox.annotation.rewrite_diff import Derived, derive
from prox.engines.rules import doc_program
from prox.execution import Policy, execute_programs
from prox.language import Category

WEB = ROOT / "samples" / "web-documents.jsonl"


def rows(folder: Path, pattern: str = "**/*.parquet") -> list[dict]:
    return [row for path in sorted(folder.glob(pattern)) for row in pq.read_table(path).to_pylist()]


def examples(data: Path, stage: str) -> list[dict]:
    return rows(data / stage)


def test_rules_teacher_prompts_are_refines(tmp_path):
    data, dry = tmp_path / "data", tmp_path / "dry"
    run_prox("annotate", "--teacher", "rules", "-i", str(WEB), "-o", str(data), "--validation-share", "0.3")
    run_prox("refine", "--engine", "rules", "--dry-run", "-i", str(WEB), "-o", str(dry))
    prompts = {(r["id"], r["stage"], r["chunk"]): r for r in rows(dry / "prompts")}
    made = examples(data, "doc") + examples(data, "chunk")
    refused = rows(data / "refused")
    for example in made:
        prompt = prompts[(example["id"], example["stage"], example["chunk"])]
        assert (example["prompt"], example["prompt_token_ids"]) == (prompt["prompt"], prompt["prompt_token_ids"])
    assert {(r["id"], r["stage"], r["chunk"]) for r in made + refused} == set(prompts)

    stats = json.loads((data / "stats.json").read_text())
    chunk_prompts = sum(key[1] == "chunk" for key in prompts)
    assert stats["input"] == 24 == stats["doc_examples"] + stats["doc_refused"]
    assert stats["chunks"] == chunk_prompts == stats["chunk_examples"] + stats["chunk_refused"]
    assert stats["keep"] + stats["drop"] == stats["doc_examples"] and stats["keep"] and stats["drop"]
    assert stats["train"] + stats["validation"] == len(made) and stats["validation"]
    texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in WEB.read_text().splitlines()}
    for example in examples(data, "doc"):  # the rules teacher's label is the rules engine's decision
        assert example["completion"] == doc_program(texts[example["id"]]).split("  #")[0]
    for example in examples(data, "chunk"):
        assert all(example["first_line"] <= line <= example["last_line"] for line in example["removed_lines"])

    import datasets

    loaded = datasets.load_dataset(str(data), "chunk")
    assert len(loaded["train"]) + len(loaded["validation"]) == stats["chunk_examples"]
    again = run_prox("annotate", "--teacher", "rules", "-i", str(WEB), "-o", str(data), "--validation-share", "0.3")
    assert "nothing to do" in again.stdout
    changed = run_prox("annotate", "--teacher", "rules", "-i", str(WEB), "-o", str(data), check=False)
    assert changed.returncode == 1 and "--overwrite" in changed.stderr

    # the rules' rewrites carry the same deletions as their programs: the diff finds the programs again
    rewrites = tmp_path / "rewrites"
    run_prox("annotate", "--teacher", "rules", "--method", "rewrite", "--stage", "chunk", "-i", str(WEB),
             "-o", str(rewrites), "--validation-share", "0.3")
    by_key = {(r["id"], r["chunk"]): r["completion"] for r in examples(data, "chunk")}
    assert {(r["id"], r["chunk"]): r["completion"] for r in examples(rewrites, "chunk")} == by_key


DOCUMENTS = {
    "anatomy": "Anatomy notes\nHome | About | Contact\nThe heart pumps blood through two circuits, the pulmonary and "
               "the systemic. Read more\nThe pulmonary circuit carries blood to the lungs, where it picks up oxygen "
               "and gives off carbon dioxide.\nThe systemic circuit carries the oxygen-rich blood to the rest of "
               "the body and brings it back.\n© 2024 Anatomy site",
    "garden": "Garden diary\nWe sowed the beans in April, two weeks later than last year, after a cold spell.\n"
              "The soil was still wet, so we raised the beds with compost and waited for the sun.",
    "casino": "Casino bonus page\nWin big now with our bonus codes, the best bonus codes on the web today!\n"
              "Bonus codes, free spins, more bonus codes and free spins every single day.",
    "unsure": "Unsure page\nThe committee met on Tuesday and decided to postpone the vote until the spring.\n"
              "Members asked for more time to read the proposal and the comments received.",
    "overrated": "Overrated page\nThis page explains how tides follow the moon, twice a day on most coasts.\n"
                 "The sun adds a smaller pull, so the tides are strongest at new and full moon.",
    "refused": "Refused page\nA page the teacher's server refuses to answer about, whatever is asked.\n"
               "It should end up refused, with the server's reason, and never stop the run.",
}
SCORES = {"anatomy": "Clear, on topic.\nEducational score: 4\nFormat score: 3",
          "garden": "A diary.\n**Educational score: 2**\nFormat score: 4",  # keep by the second rule
          "casino": "Spam.\nEducational score: 1\nFormat score: 1",
          "unsure": "I cannot say.", "overrated": "Educational score: 7\nFormat score: 2"}


def _title(key: str) -> str:
    return next(t for t in DOCUMENTS if DOCUMENTS[t].split("\n")[0] in key)


def teacher_answer(key: str) -> str:
    """What the test's teacher says: by task (the prompt's wording) and by document (its title)."""
    title = _title(key)
    if "Educational score: <points>" in key:
        return SCORES[title]
    chunk = key.rsplit("[doc]\n", 1)[1].rsplit("\n[/doc]", 1)[0]
    if "Return the same text" in key:  # rewrite: nav line and " Read more" deleted, one word added
        kept = [line.replace(" Read more", "") for line in chunk.split("\n") if line != "Home | About | Contact"]
        kept[-1] += " Indeed."
        return "Here you are.\n[clean]\n" + "\n".join(kept) + "\n[/clean]"
    numbered = {line.split("]", 1)[1]: int(line[1:].split("]")[0]) for line in chunk.split("\n")}
    if "NAVIGATION noise" in key:
        if title == "garden":
            return "Sure, here it is: remove_lines(line_start=0"
        if title == "unsure":
            return "remove_lines(line_start=500, line_end=501)"
        line = numbered.get("Home | About | Contact")
        return "keep_chunk()" if line is None else f"remove_lines(line_start={line}, line_end={line})"
    if "URL and LINK noise" in key:
        fenced = '```\nnormalize(source_str=" Read more", target_str="")\n```'
        return fenced if " Read more" in chunk else "keep_chunk()"
    line = next((n for text, n in numbered.items() if text.startswith("©")), None)
    return "keep_chunk()" if line is None else f"remove_lines(line_start={line}, line_end={line})"


@pytest.fixture
def teacher():
    server = FakeServer(reply_text=teacher_answer,
                        answer=lambda key, attempt: ("status", 400, {"error": {"message": "content refused"}})
                        if "Refused page" in key else "ok")
    yield server
    server.close()


def test_chat_teacher_answers_are_stored_or_refused(tmp_path, teacher):
    documents = tmp_path / "documents.jsonl"
    documents.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in DOCUMENTS.items()))
    data = tmp_path / "data"
    args = ("annotate", "-i", str(documents), "--teacher-endpoint", teacher.url, "--teacher-model", "teacher-70b",
            "--validation-share", "0")
    run_prox(*args, "-o", str(data))
    assert teacher.payloads[0]["messages"][0]["role"] == "system" and teacher.payloads[0]["model"] == "teacher-70b"
    stats = json.loads((data / "stats.json").read_text())
    assert {k: stats[k] for k in ("input", "doc_examples", "doc_refused", "keep", "drop", "chunks", "chunk_examples",
                                  "chunk_refused")} == {"input": 6, "doc_examples": 3, "doc_refused": 3, "keep": 2,
                                                        "drop": 1, "chunks": 6, "chunk_examples": 3,
                                                        "chunk_refused": 3}
    refused = stats["refused_by_category"]
    assert {k: refused.pop(k) for k in ("no_scores", "score_out_of_range", "teacher_error", "line_outside_chunk")} == {
        "no_scores": 1, "score_out_of_range": 1, "teacher_error": 4, "line_outside_chunk": 1}
    assert len(refused) == 1 and next(iter(refused)) in {c.value for c in Category}  # the garbled program's
    assert stats["programs_by_kind"] == {"footers": 1, "navigation": 1, "urls": 1}

    docs = {r["id"]: r for r in examples(data, "doc")}
    assert {k: (r["completion"], r["educational_score"], r["format_score"], r["label"]) for k, r in docs.items()} == {
        "anatomy": ("keep_doc()", 4, 3, "keep"), "garden": ("keep_doc()", 2, 4, "keep"),
        "casino": ("drop_doc()", 1, 1, "drop")}
    chunks = {r["id"]: r for r in examples(data, "chunk")}
    assert set(chunks) == {"anatomy", "casino", "overrated"}
    assert chunks["anatomy"]["completion"] == ("remove_lines(line_start=1, line_end=1)\n"
                                               "remove_lines(line_start=5, line_end=5)\n"
                                               'normalize(source_str=" Read more", target_str="")')
    assert chunks["anatomy"]["removed_lines"] == [1, 5] and chunks["casino"]["completion"] == "keep_chunk()"
    answers = {(r["id"], r["category"]): r["answer"] for r in rows(data / "refused")}
    assert answers[("unsure", "no_scores")] == "I cannot say."
    assert answers[("unsure", "line_outside_chunk")] == "remove_lines(line_start=500, line_end=501)"
    refined = execute_programs(DOCUMENTS["anatomy"], "keep_doc()", chunks["anatomy"]["completion"], Policy())
    assert "Home |" not in refined.text and "Read more" not in refined.text and "©" not in refined.text

    rewrites = tmp_path / "rewrites"
    run_prox(*args, "-o", str(rewrites), "--method", "rewrite", "--stage", "chunk")
    stats = json.loads((rewrites / "stats.json").read_text())
    assert stats["chunk_examples"] == 5 and stats["refused_by_category"] == {"teacher_error": 1}
    assert stats["rewrite_discarded"] == {"insertions": 5}  # " Indeed." after each chunk's last line
    chunks = {r["id"]: r["completion"] for r in examples(rewrites, "chunk")}
    assert chunks["anatomy"] == ("remove_lines(line_start=1, line_end=1)\n"
                                 'normalize(source_str=" Read more", target_str="")')
    assert chunks["garden"] == "keep_chunk()"


def test_rewrite_keeps_only_deletions_on_real_documents():
    """Real pages with lines and in-line spans deleted, a word changed and a line added: the derived
    program removes exactly those lines and spans, and nothing else changes."""
    texts = [json.loads(line)["text"] for line in WEB.read_text().splitlines()]
    tried = 0
    for text in texts:
        lines = text.split("\n")
        unique = [i for i, line in enumerate(lines) if line.strip() and lines.count(line) == 1]
        long = [i for i in unique if len(words := lines[i].split()) > 8 and text.count(" ".join(words[2:5])) == 1]
        if len(unique) < 8 or not long:
            continue
        tried += 1
        removed = sorted({unique[0], unique[2], unique[-1]} - {long[0]})
        edited = long[0]
        span = " " + " ".join(lines[edited].split()[2:5])
        expected_line = lines[edited].replace(span, "", 1)
        rewritten = []
        for i, line in enumerate(lines):
            if i == edited:
                rewritten += [expected_line, "An added line."]
            elif i not in removed:
                rewritten.append(line)
        changed = next(i for i, line in enumerate(rewritten) if len(line) > 40 and line != expected_line)
        rewritten[changed] = rewritten[changed].replace(rewritten[changed].split()[1], "banana", 1)
        rewrite = "\n".join(rewritten)
        derived = derive(text, range(len(lines)), rewrite)
        assert isinstance(derived, Derived), derived
        assert list(derived.removed_lines) == removed
        assert derived.discarded["insertions"] >= 1 and derived.discarded["substitutions"] >= 1
        expected = "\n".join(expected_line if i == edited else line for i, line in enumerate(lines) if i not in removed)
        assert derived.expected == expected
        result = execute_programs(text, None, derived.program, Policy(threshold_2=1.1, min_words=-1))
        assert result.text == expected
        checked = checked_example(text, range(len(lines)), derived.program, derived.removed_lines, 1.0,
                                  expected=derived.expected)
        assert checked.program == derived.program
    assert tried >= 5


def test_rewrite_edge_cases():
    """A short line edited stays, blank lines the teacher dropped stay, moved lines are refused."""
    text = "Q1\nWhat is two plus two? It is four.\n\n\n(c) 2023 Foo Corp. All rights reserved."
    derived = derive(text, range(5), "Q1.\nWhat is two plus two? It is four.\n")
    assert derived.removed_lines == (4,) and derived.expected == "Q1\nWhat is two plus two? It is four.\n\n"
    moved = derive("Intro line here\nBody text goes here.", range(2), "Body text goes here.\nIntro line here")
    assert moved.category == "rewrite_mismatch"

"""Bad input gets a clear error or a recorded per-document outcome: never a crash mid-run, never a
silent skip. `prox refine --engine rules` (no model needed) through the real CLI, then `prox verify`."""

import json
import os
import random

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, read_output, refine_with_rules, verify_json

pytestmark = pytest.mark.slow
DOCUMENTS = [orjson.loads(line) for line in (ROOT / "samples" / "web-documents.jsonl").read_bytes().splitlines()]


def refine(input_path, out, *extra):
    return refine_with_rules(input_path, out, *extra, check=False)


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory):
    """One folder holding every kind of bad input at once, next to good shards."""
    folder = tmp_path_factory.mktemp("bad-input")
    good = [{"id": d["id"], "text": d["text"]} for d in DOCUMENTS[:6]]
    good.append({"id": good[0]["id"], "text": good[1]["text"]})  # a duplicate id
    pq.write_table(pa.Table.from_pylist(good), folder / "good.parquet")
    other = [{"id": d["id"] + "#other", "text": d["text"], "lang": "en", "metadata": "a plain string"}
             for d in DOCUMENTS[6:9]]
    pq.write_table(pa.Table.from_pylist(other), folder / "other-schema.parquet")  # another schema
    rows = [b'{"id": "int", "text": 42}', b'{"id": "null", "text": null}', b'{"id": "empty", "text": ""}',
            b'{"id": "blank", "text": "  \\n\\t "}', b'{"id": "no-text", "body": "x"}', b"[1, 2]",
            b'{"id": "latin1", "text": "caf\xe9"}', b'{"id": "cut off", "text": "ab']
    (folder / "types.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    words = " ".join(DOCUMENTS[0]["text"].split()).split()
    rng = random.Random(0)
    one_line = " ".join(rng.choice(words) for _ in range(900_000))[:5_000_000]
    many_lines = "\n".join(" ".join(rng.choice(words) for _ in range(6)) for _ in range(100_000))
    with open(folder / "huge.jsonl", "w") as file:
        file.write(json.dumps({"id": "5mb-line", "text": one_line}) + "\n")
        file.write(json.dumps({"id": "100k-lines", "text": many_lines}) + "\n")
    pq.write_table(pa.Table.from_pylist([{"id": "x", "body": "no text column"}]), folder / "no-text.parquet")
    pq.write_table(pa.Table.from_pylist(good), folder / "truncated.parquet")
    data = (folder / "truncated.parquet").read_bytes()
    (folder / "truncated.parquet").write_bytes(data[: len(data) // 2])
    return folder


@pytest.fixture(scope="module")
def bad_run(bad_input, tmp_path_factory):
    out = tmp_path_factory.mktemp("bad-run") / "out"
    return out, refine(bad_input, out)


def test_unreadable_files_are_named_the_rest_completes_and_the_exit_status_says_so(bad_run, bad_input):
    out, result = bad_run
    assert result.returncode == 1
    assert "FAILED no-text.parquet" in result.stderr and "no column 'text'" in result.stderr
    assert "FAILED truncated.parquet" in result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["shards"] == {"total": 6, "done": 4, "limited": 0, "failed": 2, "pending": 0}
    assert sorted(stats["failed_shards"]) == ["no-text.parquet", "truncated.parquet"]
    found = verify_json(bad_input, out)
    assert found["exit"] == 1  # two shards are not done, and verify says which, once each
    assert sorted(line.split(":")[0] for line in found["unfinished_shards"]) == ["no-text.parquet", "truncated.parquet"]
    assert all("cannot be read to the end: reading stopped at row 0" in line for line in found["unfinished_shards"])
    assert {k: v for k, v in found["counts"].items() if k != "unfinished_shards"} == \
        {"missing": 0, "duplicated": 0, "unexplained": 0, "misplaced": 0, "stats_disagree": 0}


def test_each_bad_row_has_a_recorded_outcome(bad_run):
    out, _ = bad_run
    kept, dropped = read_output(out)
    rows = kept + dropped
    by_row = {(r["metadata"]["prox_shard"], r["metadata"]["prox_row"]): r for r in rows}
    reasons = {r["id"]: r["metadata"]["prox_reason"] for r in rows if r["metadata"]["prox_shard"] == "types.jsonl"}
    assert reasons == {"int": "invalid_input", "null": "invalid_input", "empty": "empty_text", "blank": "empty_text",
                       "no-text": "invalid_input", "types.jsonl/5": "invalid_input",
                       "latin1": "invalid_input", "types.jsonl/7": "invalid_input"}  # the id of a bad line is kept
    assert "not valid" in by_row[("types.jsonl", 6)]["metadata"]["prox_input_error"].lower() or \
        "utf" in by_row[("types.jsonl", 6)]["metadata"]["prox_input_error"].lower()
    huge = {r["id"]: r["metadata"] for r in rows if r["metadata"]["prox_shard"] == "huge.jsonl"}
    assert set(huge) == {"5mb-line", "100k-lines"} and all(m["prox_reason"] for m in huge.values())
    assert [r["id"] for r in rows if r["metadata"]["prox_shard"] == "good.parquet"].count(DOCUMENTS[0]["id"]) == 2
    assert len([r for r in rows if r["metadata"]["prox_shard"] == "other-schema.parquet"]) == 3


def test_a_fixed_input_resumes_only_what_failed(bad_run, bad_input, tmp_path):
    out, _ = bad_run
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    for path in bad_input.iterdir():
        (fixed / path.name).write_bytes(path.read_bytes())
    good = pq.read_table(bad_input / "good.parquet")
    pq.write_table(good, fixed / "truncated.parquet")
    pq.write_table(good.rename_columns(["id", "body"]), fixed / "no-text.parquet")  # still no text column
    result = refine(fixed, out)
    assert result.returncode == 1 and "FAILED no-text.parquet" in result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["ran_shards"] == 2 and stats["shards"]["done"] == 5


@pytest.mark.parametrize("case", ["missing input", "no input files", "output not writable"])
def test_clear_errors_before_anything_runs(case, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    (source / "a.jsonl").write_text(json.dumps({"id": "a", "text": DOCUMENTS[0]["text"]}) + "\n")
    out = tmp_path / "out"
    if case == "missing input":
        source, expected = tmp_path / "nowhere", "does not exist"
    elif case == "no input files":
        (source / "a.jsonl").rename(source / "a.txt")
        expected = "no input files"
    else:
        (tmp_path / "a-file").write_text("")
        out, expected = tmp_path / "a-file" / "out", "a-file"
    result = refine(source, out)
    assert result.returncode == 1 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    if case != "output not writable":
        assert not out.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_output_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    result = refine(ROOT / "samples" / "web-documents.jsonl", out)
    assert result.returncode == 1 and "Permission denied" in result.stderr and "Traceback" not in result.stderr

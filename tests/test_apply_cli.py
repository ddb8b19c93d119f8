"""`prox apply` end to end: the real CLI in a subprocess on real documents and real parquet files."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import read_output, run_prox, sample_rows

from prox.execution import execute_programs


def write_shards(folder, rows):
    """Half the rows as jsonl.gz, half as parquet: both formats in one run."""
    folder.mkdir()
    half = len(rows) // 2
    with gzip.open(folder / "part-0.jsonl.gz", "wt") as file:
        file.writelines(json.dumps(row) + "\n" for row in rows[:half])
    pq.write_table(pa.Table.from_pylist(rows[half:]), folder / "part-1.parquet")


def test_apply_accounts_for_every_document_and_matches_the_interpreter(tmp_path):
    rows = sample_rows()
    write_shards(tmp_path / "in", rows)
    result = run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                      "--tasks", "2", "--workers", "2")
    kept, dropped = read_output(tmp_path / "out")
    assert sorted(r["id"] for r in kept + dropped) == sorted(r["id"] for r in rows)
    for row in kept + dropped:
        source = next(r for r in rows if r["id"] == row["id"])
        outcome = execute_programs(source["text"], source["metadata"]["doc_program"],
                                   source["metadata"]["chunk_program"])
        assert row["text"] == outcome.text
        assert row["metadata"]["prox_reason"] == outcome.reason.value
        assert row["metadata"]["url" if "url" in source["metadata"] else "label"] is not None
    assert all(r["metadata"]["prox_action"] == "dropped" for r in dropped)
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert stats["input"] == len(rows) == stats["kept"] + stats["modified"] + stats["dropped"]
    assert stats["dropped"] == len(dropped) and stats["kept"] + stats["modified"] == len(kept)
    assert sum(stats["dropped_by_reason"].values()) == len(dropped)
    assert stats["diagnostics"]["truncated"] >= 1 and stats["diagnostics"]["line_out_of_range"] >= 1
    assert "modified" in result.stdout


def test_rerun_of_a_finished_run_does_nothing_and_says_so(tmp_path):
    write_shards(tmp_path / "in", sample_rows())
    args = ("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    run_prox(*args)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.parquet")}
    result = run_prox(*args)
    assert "nothing to do" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.parquet")} == before


def test_an_interrupted_shard_is_redone_and_partial_files_are_not_output(tmp_path):
    rows = sample_rows()
    write_shards(tmp_path / "in", rows)
    run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "full"))
    out = tmp_path / "out"
    run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(out))
    # what a run killed while writing part-1 leaves: a partial file, no summary, no committed file
    (out / "logs" / "shards" / "part-1.json").unlink()
    (out / "part-1.parquet").rename(out / "logs" / "partial" / "part-1.parquet")
    (out / "excluded" / "part-1.parquet").unlink()
    kept, dropped = read_output(out)
    assert len(kept) + len(dropped) < len(rows)
    result = run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(out))
    assert "nothing to do" not in result.stdout
    assert read_output(out) == read_output(tmp_path / "full")


def test_bad_rows_are_excluded_with_a_reason_never_skipped(tmp_path):
    (tmp_path / "in").mkdir()
    good = sample_rows()[0]
    lines = [json.dumps(good).encode(), json.dumps({"id": "empty", "text": "  \n "}).encode(),
             json.dumps({"id": "null", "text": None}).encode(), json.dumps({"id": "number", "text": 7}).encode(),
             json.dumps({"id": "no-text"}).encode(), b'{"id": "broken", "text": "cut',
             b'{"id": "latin1", "text": "caf\xe9"}', b"", json.dumps({"text": "no id at all, " * 5}).encode()]
    (tmp_path / "in" / "rows.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    kept, dropped = read_output(tmp_path / "out")
    reasons = {r["id"]: r["metadata"]["prox_reason"] for r in kept + dropped}
    assert reasons == {good["id"]: "refined", "empty": "empty_text", "null": "invalid_input",
                       "number": "invalid_input", "no-text": "invalid_input", "rows.jsonl/5": "invalid_input",
                       "latin1": "invalid_input", "rows.jsonl/7": "no_program"}
    errors = {r["id"]: r["metadata"]["prox_input_error"] for r in dropped}
    assert "not valid UTF-8" in errors["latin1"] and "null" in errors["null"]
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["input"] == 8


def test_unreadable_file_is_named_the_rest_completes_and_exit_status_is_1(tmp_path):
    rows = sample_rows()
    write_shards(tmp_path / "in", rows)
    data = (tmp_path / "in" / "part-1.parquet").read_bytes()
    (tmp_path / "in" / "part-1.parquet").write_bytes(data[: len(data) // 2])
    result = run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), check=False)
    assert result.returncode == 1
    assert "part-1.parquet" in result.stderr and "FAILED" in result.stderr
    kept, dropped = read_output(tmp_path / "out")
    assert len(kept) + len(dropped) == len(rows) // 2
    pq.write_table(pa.Table.from_pylist(rows[len(rows) // 2:]), tmp_path / "in" / "part-1.parquet")
    run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    kept, dropped = read_output(tmp_path / "out")
    assert len(kept) + len(dropped) == len(rows)


def test_thresholds_are_options(tmp_path):
    write_shards(tmp_path / "in", sample_rows())
    run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "default"))
    run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "strict"),
             "--threshold-1", "0.99", "--error-op", "1")
    default = json.loads((tmp_path / "default" / "stats.json").read_text())
    strict = json.loads((tmp_path / "strict" / "stats.json").read_text())
    assert strict["modified"] < default["modified"]
    assert strict["reasons"].get("below_threshold_1", 0) + strict["reasons"].get("too_many_errors", 0) > 0
    assert strict["settings"]["policy"]["threshold_1"] == 0.99


def test_stats_command_and_clear_errors(tmp_path):
    write_shards(tmp_path / "in", sample_rows())
    run_prox("apply", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert "documents" in run_prox("stats", str(tmp_path / "out")).stdout
    assert json.loads(run_prox("stats", str(tmp_path / "out"), "--json").stdout)["input"] == 24
    missing = run_prox("apply", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), check=False)
    assert missing.returncode == 1 and "nope" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_prox("apply", "--input", str(tmp_path / "empty"), "--output", str(tmp_path / "o"), check=False)
    assert empty.returncode == 1 and "no input files" in empty.stderr
    assert run_prox("stats", str(tmp_path / "o2"), check=False).returncode == 1

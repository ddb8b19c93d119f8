"""Families of unusual input that once lost or changed documents while the run exited 0: file names
that share an output name, symlinked folders, ids a JSON parser changes, byte order marks, files cut
off, binary text. Each through the real CLI (`prox refine --engine rules`, `prox apply`, a dry run),
then `prox verify`, which must also still report rows lost on purpose."""

import codecs
import gzip
import json
import os
from decimal import Decimal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, TOKENIZER, run_prox
from conftest import refine_with_rules as refine
from conftest import verify_json as verify

pytestmark = pytest.mark.slow
TEXTS = [orjson.loads(line)["text"] for line in (ROOT / "samples" / "web-documents.jsonl").read_bytes().splitlines()]


def jsonl_bytes(rows: list[dict]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def documents(name: str, count: int = 2, start: int = 0) -> list[dict]:
    """Real documents with ids unique to their file, some of which the rules engine drops."""
    return [{"id": f"{name}#{i}", "text": TEXTS[(start + i) % len(TEXTS)]} for i in range(count)]


def write(path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(jsonl_bytes(rows)))
    else:
        path.write_bytes(jsonl_bytes(rows))


def verified(input_path, out) -> dict:
    found = verify(input_path, out)
    assert found["exit"] == 0 and found["ok"], found
    return found


def output_rows(out) -> list[dict]:
    paths = [p for p in out.rglob("*.parquet") if p.relative_to(out).parts[0] not in ("logs", "prompts")]
    return [row for path in sorted(paths) for row in pq.read_table(path).to_pylist()]


def ids_by_shard(out) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in output_rows(out):
        found.setdefault(row["metadata"]["prox_shard"], set()).add(row["id"])
    return found


CLASHING = ["part-0.jsonl", "part-0.parquet", "part-0.jsonl.gz", "x.jsonl", "excluded/x.jsonl",
            "logs/shards/x.jsonl", "prompts/x.jsonl", "a.parquet", "a.part1.parquet", "Case.jsonl", "case.jsonl",
            "s.jsonl", "s.parquet/t.jsonl", "stats.json/u.jsonl"]


def test_input_files_whose_output_names_clash_each_get_their_own_outputs(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    for number, name in enumerate(CLASHING):
        write(source / name, documents(name, 3, start=number))
    expected = {name: {f"{name}#{i}" for i in range(3)} for name in CLASHING}

    result = refine(source, out)
    assert "shards: 14/14 done" in result.stdout
    assert "part-0.parquet is written as part-0.parquet.parquet" in result.stdout
    assert ids_by_shard(out) == expected
    assert {row["metadata"]["prox_action"] for row in output_rows(out)} >= {"dropped", "modified"}
    verified(source, out)

    # a file added later whose plain name is taken: only it runs; the done shards keep their names
    names_before = json.loads((out / "logs" / "names.json").read_text())
    write(source / "x.parquet", documents("x.parquet", 3))
    expected["x.parquet"] = {f"x.parquet#{i}" for i in range(3)}
    refine(source, out)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["ran_shards"] == 1 and stats["shards"]["done"] == 15
    assert stats["output_names"]["x.parquet"] == "x.parquet"
    assert json.loads((out / "logs" / "names.json").read_text()).items() >= names_before.items()
    assert ids_by_shard(out) == expected
    verified(source, out)

    # the dry run's prompts/ follow the same names
    refine(source, out, "--dry-run", "--doc-model", str(TOKENIZER), "--chunk-model", str(TOKENIZER))
    prompts = [row for p in (out / "prompts").rglob("*.parquet") for row in pq.read_table(p).to_pylist()]
    assert {row["id"] for row in prompts if row["stage"] == "doc"} == set().union(*expected.values())

    # a prox output holds x.parquet beside excluded/x.parquet: applying its programs again loses nothing
    again = tmp_path / "again"
    run_prox("apply", "--input", str(out), "--output", str(again))
    assert sorted(row["id"] for row in output_rows(again)) == sorted(row["id"] for row in output_rows(out))
    verified(out, again)


def test_symlinked_folders_are_followed_once_and_loops_and_second_paths_are_reported(tmp_path):
    elsewhere, source, out = tmp_path / "elsewhere", tmp_path / "in", tmp_path / "out"
    write(elsewhere / "real" / "a.jsonl", documents("a", 2))
    write(elsewhere / "real" / "sub" / "b.parquet", documents("b", 2))
    write(elsewhere / "single.jsonl", documents("single", 2))
    write(source / "own.jsonl", documents("own", 2))
    (source / "deep").mkdir()
    os.symlink(elsewhere / "real", source / "linked")  # a folder outside the input
    os.symlink("../elsewhere/real", source / "again")  # the same folder a second time
    os.symlink(".", source / "loop")  # the input folder itself
    os.symlink("..", source / "deep" / "up")  # a folder above
    os.symlink(elsewhere / "single.jsonl", source / "file-link.jsonl")
    os.symlink("own.jsonl", source / "own-again.jsonl")  # a second path to a listed file
    write(source / "hub" / "blobs" / "3f2a", documents("blob", 2))  # a Hugging Face cache: blobs have no extension
    (source / "hub" / "snapshots" / "r1").mkdir(parents=True)
    os.symlink("../../blobs/3f2a", source / "hub" / "snapshots" / "r1" / "train.jsonl")
    os.symlink(tmp_path / "unmounted" / "shards", source / "archive")  # a folder of shards, not there

    result = refine(source, out)
    assert ids_by_shard(out) == {"again/a.jsonl": {"a#0", "a#1"}, "again/sub/b.parquet": {"b#0", "b#1"},
                                 "file-link.jsonl": {"single#0", "single#1"}, "own.jsonl": {"own#0", "own#1"},
                                 "hub/snapshots/r1/train.jsonl": {"blob#0", "blob#1"}}
    reported = ["linked/ not followed: it is again/ again, listed there",
                "loop/ not followed: it is the input folder again (a symlink loop)",
                "deep/up/ not followed: it is the input folder again (a symlink loop)",
                "own-again.jsonl read once, as own.jsonl: they are the same file",
                f"archive not read: a symlink to {tmp_path / 'unmounted' / 'shards'}, which does not exist"]
    for note in reported:
        assert note in result.stderr and f"input: {note}" in result.stdout
    found = verified(source, out)
    assert sorted(found["notes"]) == sorted(reported)

    os.symlink(tmp_path / "nowhere.jsonl", source / "gone.jsonl")  # dangling: named, not skipped
    result = refine(source, out, check=False)
    assert result.returncode == 1 and "FAILED gone.jsonl" in result.stderr and "nowhere.jsonl" in result.stderr
    found = verify(source, out)
    assert found["exit"] == 1 and [line.split(":")[0] for line in found["unfinished_shards"]] == ["gone.jsonl"]
    assert found["counts"]["missing"] == found["counts"]["stats_disagree"] == 0


def test_ids_come_out_exactly_as_written_or_the_row_records_why(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    text = json.dumps(TEXTS[1])
    lines = [f'{{"id": 1180591620717411303425, "text": {text}}}', f'{{"id": 1180591620717411303426, "text": {text}}}',
             f'{{"id": 9223372036854775807, "text": {text}}}', f'{{"id": -0, "text": {text}}}',
             f'{{"id": 1e5, "text": {text}}}', f'{{"id": 1.50, "text": {text}}}', f'{{"id": true, "text": {text}}}',
             f'{{"id": [1, 2], "text": {text}}}', '{"id": "surrogate text", "text": "\\ud800 x"}',
             f'{{"id": "\\udc00", "text": {text}}}', f'{{"id": "plain", "text": {text}}}',
             f'{{"id": "deep", "text": {text}, "x": {"[" * 3000 + "]" * 3000}}}',  # deeper than Python parses
             f'{{"id": 0, "text": {text}, "x": {"[" * 1000 + "]" * 1000}}}']
    (source / "ids.jsonl").write_bytes("\n".join(lines).encode() + b'\n{"id": "latin-1 text", "text": "caf\xe9"}\n')
    pq.write_table(pa.table({"id": pa.array([2**64 - 1, 2**63], pa.uint64()), "text": [TEXTS[1]] * 2}),
                   source / "uint64.parquet")
    pq.write_table(pa.table({"id": pa.array([b"bin-id", b"\xff"], pa.binary()), "text": [TEXTS[1]] * 2}),
                   source / "binary-ids.parquet")
    pq.write_table(pa.table({"id": pa.array([Decimal("1.50")]), "text": [TEXTS[1]]}), source / "decimal.parquet")

    refine(source, out)
    rows = {(r["metadata"]["prox_shard"], r["metadata"]["prox_row"]): r for r in output_rows(out)}
    ids = {key: row["id"] for key, row in rows.items()}
    assert [ids[("ids.jsonl", i)] for i in range(14)] == [
        "1180591620717411303425", "1180591620717411303426", "9223372036854775807", "-0", "1e5", "1.50", "true",
        "ids.jsonl/7", "surrogate text", "ids.jsonl/9", "plain", "ids.jsonl/11", "ids.jsonl/12", "latin-1 text"]
    errors = {key: row["metadata"]["prox_input_error"] for key, row in rows.items()}
    assert errors[("ids.jsonl", 7)] == "the id is a list, not a string or a number"
    assert all(errors[("ids.jsonl", i)].startswith("unreadable line") for i in (8, 9, 11, 12, 13))
    assert not any(errors[("ids.jsonl", i)] for i in (0, 1, 2, 3, 4, 5, 6, 10))
    assert [ids[("uint64.parquet", i)] for i in range(2)] == ["18446744073709551615", "9223372036854775808"]
    assert ids[("binary-ids.parquet", 0)] == "bin-id" and ids[("binary-ids.parquet", 1)] == "binary-ids.parquet/1"
    assert errors[("binary-ids.parquet", 1)] == "the id is binary and not valid UTF-8"
    assert ids[("decimal.parquet", 0)] == "1.50"
    verified(source, out)


def test_a_utf8_byte_order_mark_at_the_start_of_a_file_or_line_is_ignored(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    bom = codecs.BOM_UTF8
    (source / "bom.jsonl").write_bytes(bom + jsonl_bytes(documents("bom")))
    (source / "bom.jsonl.gz").write_bytes(gzip.compress(bom + jsonl_bytes(documents("gz"))))
    (source / "bom-blank-line.jsonl").write_bytes(bom + b"\n" + jsonl_bytes(documents("blank")))
    (source / "bom-crlf.jsonl").write_bytes(bom + jsonl_bytes(documents("crlf")).replace(b"\n", b"\r\n"))
    rows = documents("concatenated")  # `cat a.jsonl b.jsonl` puts b's mark at the start of a line
    (source / "concatenated.jsonl").write_bytes(bom + orjson.dumps(rows[0]) + b"\n" + bom + orjson.dumps(rows[1]))

    refine(source, out)
    reasons = {row["id"]: row["metadata"]["prox_reason"] for row in output_rows(out)}
    assert set(reasons) == {f"{name}#{i}" for name in ("bom", "gz", "blank", "crlf", "concatenated") for i in range(2)}
    assert "invalid_input" not in reasons.values()
    verified(source, out)


def test_verify_names_files_cut_off_once_without_claiming_loss_and_still_finds_real_loss(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    write(source / "good.jsonl", documents("good", 4))
    whole = gzip.compress(jsonl_bytes(documents("cut", 8)))
    (source / "cut.jsonl.gz").write_bytes(whole[: len(whole) * 2 // 3])
    (source / "cut-early.jsonl.gz").write_bytes(whole[:20])
    write(source / "cut.parquet", documents("cutpq", 4))
    (source / "cut.parquet").write_bytes((source / "cut.parquet").read_bytes()[:200])

    result = refine(source, out, check=False)
    assert result.returncode == 1
    found = verify(source, out)
    assert found["exit"] == 1
    assert {k: v for k, v in found["counts"].items() if v} == {"unfinished_shards": 3}
    lines = {line.split(":")[0]: line for line in found["unfinished_shards"]}
    assert sorted(lines) == ["cut-early.jsonl.gz", "cut.jsonl.gz", "cut.parquet"]
    assert all("cannot be read to the end: reading stopped at row" in line for line in lines.values())
    stopped = int(lines["cut.jsonl.gz"].split("stopped at row ")[1].split(":")[0])
    assert 0 < stopped < 8 and f"after row {stopped}" in result.stderr
    assert "stopped at row 0" in lines["cut-early.jsonl.gz"]

    for name in ("cut.jsonl.gz", "cut-early.jsonl.gz"):
        write(source / name, documents(name, 3))
    write(source / "cut.parquet", documents("cutpq", 4))
    refine(source, out)
    assert json.loads((out / "stats.json").read_text())["ran_shards"] == 3
    verified(source, out)

    # loss on purpose: a row taken out of a done shard's output, then a done shard's summary removed
    kept = out / "good.parquet" if (out / "good.parquet").exists() else out / "excluded" / "good.parquet"
    table = pq.read_table(kept)
    pq.write_table(table.slice(1), kept)
    found = verify(source, out)
    assert found["exit"] == 1 and found["counts"]["missing"] == 1
    lost = table.slice(0, 1).to_pylist()[0]
    assert found["missing"][0] == f"good.jsonl row {lost['metadata']['prox_row']} (id {lost['id']})"
    (out / "logs" / "shards" / "cut.parquet.json").unlink()  # cut.jsonl.gz came first to the name "cut"
    found = verify(source, out)
    assert "cut.parquet: not done" in found["unfinished_shards"]


def test_binary_text_columns_are_decoded_as_utf8(tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    for name, kind in (("binary.parquet", pa.binary()), ("large-binary.parquet", pa.large_binary())):
        rows = documents(name, 3)
        pq.write_table(pa.table({"id": [r["id"] for r in rows], "text": pa.array([r["text"].encode() for r in rows],
                                                                                  kind)}), source / name)
    pq.write_table(pa.table({"id": ["valid", "invalid"], "text": [TEXTS[2].encode(), b"caf\xe9 au lait"]}),
                   source / "mixed.parquet")

    refine(source, out)
    rows = {row["id"]: row for row in output_rows(out)}
    assert len(rows) == 8
    invalid = rows.pop("invalid")
    assert invalid["metadata"]["prox_reason"] == "invalid_input" and invalid["text"] == "caf\\xe9 au lait"
    assert "binary and not valid UTF-8" in invalid["metadata"]["prox_input_error"]
    assert all(row["metadata"]["prox_reason"] != "invalid_input" for row in rows.values())
    originals = {f"{name}#{i}": TEXTS[i] for name in ("binary.parquet", "large-binary.parquet") for i in range(3)}
    for id_, text in (originals | {"valid": TEXTS[2]}).items():
        assert rows[id_]["text"] == text or rows[id_]["metadata"]["prox_action"] == "modified"
    verified(source, out)

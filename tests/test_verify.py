"""`prox verify` finds what is missing, duplicated or unexplained, and a stats.json that lies; it
passes a whole run. The real CLI on a real `prox apply` output, then tampered with."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES, run_prox

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "out"
    run_prox("apply", "--input", str(SAMPLES), "--output", str(out))
    return out


def tampered(finished, tmp_path, change) -> dict:
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    change(out)
    result = run_prox("verify", str(SAMPLES), str(out), "--json", check=False)
    return orjson.loads(result.stdout) | {"exit": result.returncode, "text": result.stdout}


def rewrite(path, edit) -> None:
    rows = pq.read_table(path).to_pylist()
    pq.write_table(pa.Table.from_pylist(edit(rows)), path)


def test_a_whole_run_reconciles(finished):
    result = run_prox("verify", str(SAMPLES), str(finished))
    assert "OK: every input document is accounted for once" in result.stdout


def test_a_lost_row_is_named(finished, tmp_path):
    found = tampered(finished, tmp_path, lambda out: rewrite(out / "cc-programs.parquet", lambda rows: rows[1:]))
    assert found["exit"] == 1 and found["counts"]["missing"] == 1
    assert "cc-programs.jsonl row" in found["missing"][0]
    assert found["counts"]["stats_disagree"] >= 1  # stats.json counts the row the files lost


def test_a_duplicated_row_and_an_unexplained_row_are_named(finished, tmp_path):
    def change(out):
        def edit(rows):
            stranger = {**rows[0], "id": "stranger", "metadata": {**rows[0]["metadata"], "prox_row": 999}}
            return [*rows, rows[0], stranger]
        rewrite(out / "cc-programs.parquet", edit)

    found = tampered(finished, tmp_path, change)
    assert found["exit"] == 1
    assert found["counts"]["duplicated"] == 1 and "2 times" in found["duplicated"][0]
    assert found["counts"]["unexplained"] == 1 and "stranger" in found["unexplained"][0]


def test_a_row_in_the_wrong_folder_and_a_false_stats_file_are_named(finished, tmp_path):
    def change(out):
        rewrite(out / "excluded" / "cc-programs.parquet",
                lambda rows: [{**rows[0], "metadata": {**rows[0]["metadata"], "prox_action": "kept"}}, *rows[1:]])
        stats = json.loads((out / "stats.json").read_text())
        (out / "stats.json").write_text(json.dumps(stats | {"input": stats["input"] + 1}))

    found = tampered(finished, tmp_path, change)
    assert found["exit"] == 1
    assert any("a kept document in excluded/" in line for line in found["misplaced"])
    assert any("input documents" in line for line in found["stats_disagree"])


def test_the_installed_command_ends_with_the_commands_status(finished, tmp_path):
    """`prox` ends its process itself once exit handlers have run (pyarrow can abort a finished
    process in its teardown): the status is still the command's, and the output is all there."""
    prox = Path(sys.executable).parent / "prox"
    ok = subprocess.run([prox, "verify", str(SAMPLES), str(finished)], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0 and ok.stdout.endswith("OK: every input document is accounted for once\n")
    broken = tmp_path / "out"
    shutil.copytree(finished, broken)
    (broken / "stats.json").write_text("{}")
    assert subprocess.run([prox, "verify", str(SAMPLES), str(broken)], capture_output=True, timeout=300).returncode == 1
    usage = subprocess.run([prox, "verify"], capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    to_file = tmp_path / "stats.txt"
    with to_file.open("w") as file:  # block-buffered, not a terminal: flushed before the process ends
        assert subprocess.run([prox, "stats", str(finished)], stdout=file, timeout=300).returncode == 0
    assert to_file.read_text() == run_prox("stats", str(finished)).stdout

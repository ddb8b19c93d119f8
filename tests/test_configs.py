"""The corpus configs, the make targets that run them, and `prox stats --shards`.

Configs and make lines are checked by prox refine's own parser (click's make_context parses and
validates every option without running the command), so a config that would be refused, or a make
line that would not parse, fails here without network or GPU.
"""

import json
import os
import shlex
import shutil
import subprocess

import click
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT, run_prox, sample_rows

from prox.cli.refine import refine

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
OVERRIDE_VARIABLES = ("INPUT", "OUTPUT", "ENGINE", "GPUS", "EXECUTOR", "ARGS")


def config_keys(command: click.Command) -> dict[str, click.Parameter]:
    """Each option's config key (its long option name, - written _) and its parameter."""
    return {o[2:].replace("-", "_"): p for p in command.params for o in p.opts if o.startswith("--")}


def parse_refine(args: list[str], monkeypatch) -> dict:
    """The values prox refine would run with, from its real parser (run from the repository root)."""
    monkeypatch.chdir(ROOT)
    with refine.make_context("refine", list(args)) as context:
        return context.params


def test_there_are_the_corpus_configs_and_a_readme():
    assert {p.stem for p in CONFIGS} >= {"c4", "fineweb", "openwebmath", "local-cpu"}
    readme = (ROOT / "configs" / "README.md").read_text()
    assert all(f"configs/{p.name}" in readme for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_config_uses_option_names_and_prox_refine_accepts_it(path, monkeypatch):
    values = yaml.safe_load(path.read_text())
    options = config_keys(refine)
    settings = {str(key).replace("-", "_"): value for key, value in values.items()}
    assert not set(settings) - set(options), f"not options of prox refine: {set(settings) - set(options)}"
    for required in ("input", "output", "engine", "executor", "doc_model", "chunk_model", "threshold_1",
                     "threshold_2", "tasks"):
        assert required in settings, f"{path.name} does not name {required}"
    for key, value in settings.items():  # a string option given a YAML number (24:00:00 is one) is a slip
        if options[key].type == click.STRING:
            assert isinstance(value, str), f"{key}: {value!r} is not a string; quote it"

    params = parse_refine(["--config", str(path)], monkeypatch)
    for key, value in settings.items():
        assert params[options[key].name] == value, key


def test_configs_name_the_published_models_of_their_domain():
    for path in CONFIGS:
        settings = yaml.safe_load(path.read_text())
        prompts = yaml.safe_load((ROOT / "programs" / "prompts" / f"{settings['domain']}.yaml").read_text())
        assert settings["doc_model"] == prompts["models"]["doc"], path.name
        assert settings["chunk_model"] == prompts["models"]["chunk"], path.name
        assert (settings["threshold_1"], settings["threshold_2"], settings["error_op"]) == (0.0, 0.95, 2)


def make_dry_run(target: str, **variables: str) -> list[str]:
    """The prox refine command `make TARGET VAR=...` would run, split as the shell splits it."""
    environment = {k: v for k, v in os.environ.items()
                   if k not in OVERRIDE_VARIABLES and k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    result = subprocess.run(["make", "-n", target, *(f"{k}={v}" for k, v in variables.items())], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in result.stdout.splitlines() if "prox refine --config" in line]
    assert len(lines) == 1, result.stdout
    words = shlex.split(lines[0])
    assert words[0].endswith("/prox") and words[1] == "refine", lines[0]
    return words[2:]


@pytest.mark.parametrize("target", ["c4", "fineweb", "openwebmath", "local-cpu"])
def test_a_make_target_runs_its_config(target, monkeypatch):
    args = make_dry_run(target)
    assert args == ["--config", f"configs/{target}.yaml"]
    config = yaml.safe_load((ROOT / "configs" / f"{target}.yaml").read_text())
    params = parse_refine(args, monkeypatch)
    assert (params["input_path"], params["output_path"]) == (config["input"], config["output"])


@pytest.mark.parametrize("target", ["c4", "fineweb"])
def test_make_variables_override_the_config(target, monkeypatch):
    args = make_dry_run(target, INPUT="in dir/", OUTPUT="s3://bucket/out/", ENGINE="rules", GPUS="2",
                        EXECUTOR="ray", ARGS="--limit 10")
    params = parse_refine(args, monkeypatch)
    assert params["input_path"] == "in dir/" and params["output_path"] == "s3://bucket/out/"
    assert (params["engine"], params["gpus"], params["executor"], params["limit"]) == ("rules", 2, "ray", 10)
    assert params["dtype"] == yaml.safe_load((ROOT / "configs" / f"{target}.yaml").read_text())["dtype"]


def test_make_help_lists_the_corpus_targets():
    result = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed >= {"c4", "fineweb", "openwebmath", "local-cpu", "demo", "test"}


@pytest.fixture
def failed_run(tmp_path):
    """A prox apply output of 3 shards of the sample programs, one a truncated parquet file."""
    rows = sample_rows()
    folder = tmp_path / "in"
    folder.mkdir()
    third = len(rows) // 3
    for name, part in (("part-0.jsonl", rows[:third]), ("part-2.jsonl", rows[2 * third:])):
        (folder / name).write_text("".join(json.dumps(row) + "\n" for row in part))
    pq.write_table(pa.Table.from_pylist(rows[third:2 * third]), folder / "part-1.parquet")
    whole = (folder / "part-1.parquet").read_bytes()
    (folder / "part-1.parquet").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out"
    result = run_prox("apply", "--input", str(folder), "--output", str(out), "--tasks", "3", "--workers", "3",
                      check=False)
    assert result.returncode == 1, result.stderr[-2000:]
    return folder, out, {"part-0.jsonl": third, "part-2.jsonl": len(rows) - 2 * third}


def shard_lines(stdout: str) -> dict[str, list[str]]:
    lines = stdout.split("\nshards:")[0].strip().splitlines()
    assert lines[0].split() == ["shard", "status", "documents", "kept", "modified", "dropped"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


def test_stats_shards_shows_done_and_failed_shards(failed_run):
    _, out, sizes = failed_run
    lines = shard_lines(run_prox("stats", str(out), "--shards").stdout)
    assert set(lines) == {"part-0.jsonl", "part-1.parquet", "part-2.jsonl"}
    for shard, documents in sizes.items():
        summary = json.loads((out / "logs" / "shards" / f"{shard.removesuffix('.jsonl')}.json").read_text())
        assert lines[shard] == ["done", str(documents), *(str(summary[a]) for a in ("kept", "modified", "dropped"))]
    assert lines["part-1.parquet"][0] == "failed"
    assert "part-1.parquet" in " ".join(lines["part-1.parquet"][1:])  # the error names the file


def test_stats_with_input_counts_the_shards_as_they_are_now(failed_run):
    folder, out, sizes = failed_run
    shutil.copy(folder / "part-0.jsonl", folder / "part-3.jsonl")  # a new input file since the run
    stale = shard_lines(run_prox("stats", str(out), "--shards").stdout)
    assert "part-3.jsonl" not in stale
    result = run_prox("stats", str(out), "--shards", "--input", str(folder))
    lines = shard_lines(result.stdout)
    assert lines["part-3.jsonl"] == ["pending"]
    assert [lines[s][0] for s in ("part-0.jsonl", "part-1.parquet", "part-2.jsonl")] == ["done", "failed", "done"]
    assert "shards: 2/4 done, 1 failed, 1 pending" in result.stdout
    counted = json.loads(run_prox("stats", str(out), "--input", str(folder), "--json").stdout)
    assert counted["pending_shards"] == ["part-3.jsonl"] and counted["input"] == sum(sizes.values())
    assert "part-3.jsonl" not in json.loads((out / "stats.json").read_text())["pending_shards"]  # not rewritten


def test_stats_shards_marks_a_preview(tmp_path):
    out = tmp_path / "out"
    run_prox("refine", "--engine", "rules", "--input", str(ROOT / "samples" / "web-documents.jsonl"),
             "--output", str(out), "--limit", "3")
    lines = shard_lines(run_prox("stats", str(out), "--shards").stdout)
    assert lines["web-documents.jsonl"][:2] == ["limited", "3"] and "preview" in " ".join(lines["web-documents.jsonl"])


def test_stats_of_a_run_without_stats_json_asks_for_the_input(tmp_path):
    (tmp_path / "out").mkdir()
    result = run_prox("stats", str(tmp_path / "out"), "--shards", check=False)
    assert result.returncode == 1 and "--input" in result.stderr

"""Safe by construction: nothing in prox runs, unpickles or shells out untrusted text; configs load
with YAML's safe loader; document ids never become paths. (Each attack on the program language has
its own test in test_hostile_programs.py.)"""

import ast
import json
from pathlib import Path

import pytest
from conftest import ROOT, read_output, run_prox

SOURCES = sorted((ROOT / "prox").rglob("*.py"))
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "subprocess", "pty"}
FORBIDDEN_ATTRIBUTES = {("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execvp"), ("os", "spawnl"),
                        ("yaml", "load"), ("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "Loader"),
                        ("yaml", "UnsafeLoader")}


def findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            found.append(f"{where} calls {node.func.id}")
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where} imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_ATTRIBUTES:
                found.append(f"{where} uses {node.value.id}.{node.attr}")
        if isinstance(node, ast.keyword) and node.arg == "shell":
            found.append(f"{where} passes shell=")
    return found


# The processes prox starts: vLLM's server, as a fixed argument list (the interpreter, vLLM's module,
# the user's own options), and Slurm's squeue with a job id that sbatch gave; never through a shell,
# never with a model's output.
ALLOWED = {"vllm_server.py imports subprocess", "slurm_jobs.py imports subprocess"}


def test_the_package_never_evaluates_unpickles_or_shells_out():
    assert SOURCES
    found = [f for path in SOURCES for f in findings(path)]
    assert [f for f in found if f.split(":")[0] + " " + f.split(" ", 1)[1] not in ALLOWED] == []


def test_the_scan_sees_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import pickle\nimport yaml, os\neval('1')\nyaml.load('a')\nos.system('x')\nf(shell=True)\n")
    found = sorted(f.split(" ", 1)[1] for f in findings(bad))
    assert found == sorted(["imports pickle", "calls eval", "uses yaml.load", "uses os.system", "passes shell="])


@pytest.mark.slow
def test_a_config_with_python_tags_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    config = tmp_path / "run.yaml"
    config.write_text(f'engine: rules\nkeep_raw: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = run_prox("refine", "--config", str(config), "--input", str(ROOT / "samples" / "web-documents.jsonl"),
                      "--output", str(tmp_path / "out"), check=False)
    assert result.returncode == 2 and "cannot read" in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_document_ids_never_become_paths(tmp_path):
    hostile = ["../../escaped", "/tmp/absolute", "a/b/c", "..", "con", "x\x00y", "~/home", "$(touch pwned)"]
    text = json.loads((ROOT / "samples" / "web-documents.jsonl").read_text().splitlines()[0])["text"]
    source = tmp_path / "in"
    source.mkdir()
    (source / "ids.jsonl").write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i in hostile))
    out = tmp_path / "deep" / "out"
    run_prox("refine", "--engine", "rules", "--input", str(source), "--output", str(out))
    kept, dropped = read_output(out)
    assert sorted(row["id"] for row in kept + dropped) == sorted(hostile)
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(out) and not p.is_relative_to(source)}
    assert outside == {tmp_path / "deep"}
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    assert all("ids" in f for f in files), files
    assert run_prox("verify", str(source), str(out)).returncode == 0

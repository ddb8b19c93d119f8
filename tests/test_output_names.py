"""Every input file gets output names of its own, whatever the input's names: checked on generated
sets of paths (hypothesis) and on the families that clashed before (same stem, the layout's folder
names, rolled-over parts, a file where a folder must be, case)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prox.pipeline.output_names import INPUT_EXTENSIONS, RESERVED, NameBook, shard_stem

PROPERTIES = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
KINDS = ("", "excluded/", "prompts/")


def output_files(name: str) -> set[str]:
    """Every file the layout writes for a shard of this name (three parts of each kind, the summaries)."""
    files = {f"{kind}{name}{part}.parquet" for kind in KINDS for part in ("", ".part1", ".part2")}
    return files | {f"logs/{log}/{name}.json" for log in ("shards", "failed-shards", "limited-shards")}


def check_no_clash(names: dict[str, str]) -> None:
    files = [f.casefold() for name in names.values() for f in output_files(name)]
    assert len(files) == len(set(files)), names
    folders = {"/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1)}
    assert not folders & set(files), names  # no file where another needs a folder
    assert not {f.split("/", 1)[0] for f in files if "/" not in f} & {"excluded", "logs", "prompts"}
    for name in names.values():
        assert name.split("/", 1)[0].casefold() not in RESERVED


components = st.sampled_from(["a", "A", "b", "part-0", "x.parquet", "x.json", "x", "excluded", "logs", "prompts",
                              "_excluded", "stats.json", "a.part1", "s.part2", "data.parquet", "shards"])
paths = st.builds(lambda parts, extension: "/".join(parts) + extension,
                  st.lists(components, min_size=1, max_size=3), st.sampled_from(INPUT_EXTENSIONS))


@PROPERTIES
@given(st.lists(paths, unique=True, max_size=12), st.lists(paths, unique=True, max_size=6))
def test_names_never_clash_and_never_change(first, later):
    first, later = [p for p in first if p.casefold() not in {q.casefold() for q in later}], later
    book = NameBook()
    named = {shard: book.name(shard) for shard in sorted(first)}
    check_no_clash(named)
    reopened = NameBook(book.names)  # a later run reads the record
    named_later = {shard: reopened.name(shard) for shard in sorted(set(first) | set(later))}
    check_no_clash(named_later)
    assert {shard: named_later[shard] for shard in named} == named


def test_plain_names_where_free_and_full_names_where_not():
    book = NameBook()
    shards = ["part-0.jsonl", "part-0.parquet", "part-0.jsonl.gz", "x.jsonl", "excluded/x.jsonl", "logs/y.jsonl",
              "a.parquet", "a.part1.parquet", "Case.jsonl", "case.jsonl", "s.jsonl", "s.parquet/t.jsonl",
              "d/e.json.gz"]
    names = {shard: book.name(shard) for shard in sorted(shards)}
    assert names == {
        "Case.jsonl": "Case", "case.jsonl": "case.jsonl",
        "a.parquet": "a", "a.part1.parquet": "a.part1.parquet",
        "d/e.json.gz": "d/e",
        "excluded/x.jsonl": "_excluded/x", "logs/y.jsonl": "_logs/y",
        "part-0.jsonl": "part-0", "part-0.jsonl.gz": "part-0.jsonl.gz", "part-0.parquet": "part-0.parquet",
        "s.jsonl": "s", "s.parquet/t.jsonl": "s.parquet~2/t.jsonl~2",
        "x.jsonl": "x",
    }
    assert all(shard_stem(shard) == name for shard, name in names.items() if "/" not in name and "." not in name)


def test_a_taken_full_name_gets_a_number():
    book = NameBook({"p.jsonl": "p", "q.jsonl": "p.parquet"})  # recorded names win, whatever they are
    assert book.name("p.parquet") == "p.parquet~2"

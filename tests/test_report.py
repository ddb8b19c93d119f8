"""prox report: the page's numbers are the run's, its marked lines and spans are what the programs did,
compare mode counts what the two runs decided, nothing leaves the page; and a real browser shows it."""

import html
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import ROOT, read_output, refine_with_rules, run_prox

WEB = ROOT / "samples" / "web-documents.jsonl"
def _chromium() -> str | None:
    """Debian's Chromium, if it is here and starts (a snap's shim that cannot run counts as absent)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        works = found and subprocess.run([found, "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        works = False
    return found if works else None


CHROMIUM = _chromium()
SCREENSHOT = ROOT / "docs" / "report.png"  # the README's picture: PROX_UPDATE_SCREENSHOT=1 makes the test write it


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two refinements of the bundled pages: rules at both stages, and the chunk stage alone."""
    folder = tmp_path_factory.mktemp("runs")
    both, chunk = folder / "both", folder / "chunk-only"
    refine_with_rules(WEB, both, "--keep-raw")
    refine_with_rules(WEB, chunk, "--keep-raw", "--stage", "chunk")
    run_prox("report", str(both), "--compare", str(chunk), "--sample", "24")
    return both, chunk, (both / "report.html").read_text()


def _section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]


def test_the_pages_numbers_are_the_runs(runs):
    both, _, page = runs
    stats = json.loads((both / "stats.json").read_text())
    shown = dict(re.findall(r'data-key="(\w+)">(\d+)<', page))
    for key in ("input", "kept", "modified", "dropped", "words_before", "words_after"):
        assert int(shown[key]) == stats[key]
    assert {k: int(v) for k, v in re.findall(r'data-reason="(\w+)">(\d+)<', page)} == stats["dropped_by_reason"]
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', _section(page, "plots"))) == 3


def test_marked_lines_and_spans_are_what_the_programs_did(runs):
    """Taking the marked lines out of each sampled document and its marked spans gives the refined text."""
    both, chunk, page = runs
    run_prox("report", str(chunk), "--sample", "24")
    assert _reconstructed(both, page) == 12
    chunk_page = (chunk / "report.html").read_text()
    assert _reconstructed(chunk, chunk_page) == 21
    assert '<del class="normalized"' in _section(chunk_page, "sample")  # a span normalized away, marked


def _reconstructed(folder: Path, page: str) -> int:
    """Checks each modified document of the page's sample; returns how many there were."""
    kept, _ = read_output(folder)
    refined = {row["id"]: row for row in kept}
    documents = re.findall(r'<div class="doc" id="doc-\d+" data-id="([^"]*)">(.*?)\n</div>', _section(page, "sample"),
                           re.DOTALL)
    assert len(documents) == 24
    checked = 0
    for doc_id, body in documents:
        doc_id = html.unescape(doc_id)
        if doc_id not in refined or refined[doc_id]["metadata"]["prox_action"] != "modified":
            continue
        lines = re.findall(r'<div( class="removed")?\n data-line="\d+">(.*?)</div>', body, re.DOTALL)
        kept_lines = [re.sub(r'<del class="normalized"[^>]*>.*?</del>', "", text) for removed, text in lines
                      if not removed]
        after = html.unescape("\n".join(re.sub(r'<ins class="normalized">(.*?)</ins>', r"\1", line)
                                        for line in kept_lines))
        assert after == refined[doc_id]["text"], doc_id
        checked += 1
    return checked


def test_compare_mode_counts_both_runs_decisions(runs):
    both, chunk, page = runs
    actions = {}
    for folder in (both, chunk):
        kept, dropped = read_output(folder)
        actions[folder] = {row["id"]: row["metadata"]["prox_action"] for row in kept + dropped}
    expected = Counter((actions[both][i], actions[chunk][i]) for i in actions[both])
    shown = {tuple(k.split("-")): int(v) for k, v in re.findall(r'data-agreement="(\w+-\w+)">(\d+)<', page)}
    assert {k: v for k, v in shown.items() if v} == dict(expected)
    assert int(re.search(r'data-words="this">(\d+)<', page).group(1)) == json.loads(
        (both / "stats.json").read_text())["words_after"]
    assert _section(page, "comparison").count('<div class="pair"') == 5


def test_nothing_leaves_the_page(runs):
    page = runs[2]
    assert not re.search(r'<(script|link|iframe|object|embed)\b', page)
    assert set(re.findall(r'\b(?:src|href)="([a-z]+):', page)) <= {"data"}
    assert "url(" not in page.split("</style>")[0]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: Debian's package chromium (make test installs it "
                    "as root where apt-get can)")
def test_a_browser_shows_the_report(runs, tmp_path):
    from playwright.sync_api import sync_playwright

    both, chunk, _ = runs
    errors, requests = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: requests.append(request.url))
        page.goto((both / "report.html").as_uri())
        for section in ("summary", "plots", "removed-lines", "comparison", "sample"):
            assert page.locator(f"section#{section}").is_visible()
        widths = page.eval_on_selector_all("#plots img", "images => images.map(i => i.naturalWidth)")
        assert len(widths) == 3 and all(width > 0 for width in widths)
        assert page.locator("#sample .doc").count() == 24 and page.locator("#sample .removed").count() > 0
        page.screenshot(path=str(tmp_path / "report.png"))
        browser.close()
    assert errors == [] and requests == [(both / "report.html").as_uri()]
    assert (tmp_path / "report.png").stat().st_size > 10_000
    if os.environ.get("PROX_UPDATE_SCREENSHOT"):
        shutil.copyfile(tmp_path / "report.png", SCREENSHOT)

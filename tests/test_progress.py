"""Progress: one updating line per stage on a terminal (a real pseudo-terminal here), plain log lines
when the output is not one (cron, Slurm)."""

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

from conftest import ROOT

COMMAND = [sys.executable, "-m", "prox", "refine", "--engine", "rules", "--input",
           str(ROOT / "samples" / "web-documents.jsonl")]


def on_a_terminal(args: list[str]) -> str:
    """What a 120-column terminal shows of the command."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, close_fds=True)
    os.close(follower)
    seen = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal's other end closed
            break
        if not data:
            break
        seen += data
    os.close(leader)
    assert process.wait(timeout=120) == 0, seen[-2000:]
    return seen.decode(errors="replace")


def test_a_terminal_gets_one_updating_line_per_stage(tmp_path):
    shown = on_a_terminal([*COMMAND, "--output", str(tmp_path / "out")])
    for stage in ("doc", "chunk"):
        assert f"{stage} stage: 100%" in shown and "24/24" in shown
    assert "doc stage: 24 documents" not in shown  # the bar, not the log line


def test_a_log_gets_plain_lines(tmp_path):
    result = subprocess.run([*COMMAND, "--output", str(tmp_path / "out")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    assert "doc stage: 24 documents (24 with requests)" in result.stderr and "%|" not in result.stderr


def test_the_lines_go_on_from_task_to_task(tmp_path):
    """Two tasks in this process: each stage keeps one line, counting the whole run."""
    rows = (ROOT / "samples" / "web-documents.jsonl").read_text().splitlines(keepends=True)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_text("".join(rows[:10]))
    (folder / "b.jsonl").write_text("".join(rows[10:]))
    shown = on_a_terminal([*COMMAND[:-1], str(folder), "--tasks", "2", "--output", str(tmp_path / "out")])
    assert "doc stage: 100%" in shown and "24/24" in shown
    assert "10/10" not in shown and "14/14" not in shown  # no line per task

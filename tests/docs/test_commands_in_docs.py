"""The shell commands in README.md, docs/user-guide.md and docs/api.md run as written.

A newcomer follows them literally, in order, in a fresh clone after ``make demo``. This
test does the same: ``batchline demo --no-serve`` makes the demo database once; each
document gets a fresh copy, served by ``batchline demo`` (what ``make demo`` runs: the web
app, the job worker, the simulated ERP and LIMS); then the document's ```` ```sh ````
blocks run in one ``bash -euo pipefail``, in order, from a folder laid out like the clone
(``.venv``, ``tests``, ``workflows`` and ``var/`` with the copy). The documents do not
depend on each other.

Changed on the way, and only this: the port (the documents say 5000, which a running
demo may hold) and the lines that start the demo or a server or run make, which the
test does itself (they would block or recurse). Everything else — users, passwords,
ids, recipes, flags — runs exactly as printed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", "docs/user-guide.md", "docs/api.md"]
BIN = Path(sys.executable).parent
#: lines the test runs itself: starting the demo or a server blocks; make would recurse
STARTED_BY_THE_TEST = re.compile(r"^\s*(make\s|\S*batchline\s+(serve|demo)\b)")

pytestmark = pytest.mark.slow


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.S | re.M)


def runnable(block: str, port: int) -> str:
    """The block with the test's port, and without the lines the test runs itself
    (a line continued with a backslash is one line)."""
    logical = re.split(r"(?<!\\)\n", block)
    kept = [line for line in logical if not STARTED_BY_THE_TEST.match(line)]
    text = "\n".join(kept)
    return text.replace("127.0.0.1:5000", f"127.0.0.1:{port}").replace("--port 5000", f"--port {port}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clone_layout(folder: Path) -> None:
    """What a fresh clone after ``make demo`` has, as links to this checkout."""
    for name in (".venv", "tests", "workflows", "docs", "web", "README.md"):
        target = ROOT / name
        if target.exists():
            (folder / name).symlink_to(target)


def _env() -> dict[str, str]:
    """A newcomer's shell: no Batchline settings, and the virtualenv not activated (the
    documents must say ``.venv/bin/batchline`` or activate it themselves)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BATCHLINE_") and k != "VIRTUAL_ENV"}


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [str(BIN / "batchline"), "demo", "--no-serve"], cwd=folder, env=_env(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "var" / "batchline.db"


@pytest.mark.parametrize("document", DOCUMENTS)
def test_commands_run_as_written(document, demo_database, tmp_path):
    blocks = shell_blocks((ROOT / document).read_text(encoding="utf-8"))
    if document == "README.md":
        assert blocks, "README.md has no sh block"
    if not blocks:
        pytest.skip(f"{document} has no sh block")
    (tmp_path / "var").mkdir()
    shutil.copy(demo_database, tmp_path / "var" / "batchline.db")
    for kept in ("audit.key", "audit-anchors.jsonl"):  # a database moves with its audit key and anchors
        if (demo_database.parent / kept).exists():
            shutil.copy2(demo_database.parent / kept, tmp_path / "var" / kept)
    _clone_layout(tmp_path)
    port = _free_port()
    env = _env()
    server = subprocess.Popen(  # as make demo serves: with the job worker and the simulated ERP and LIMS
        [str(BIN / "batchline"), "demo", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the demo did not answer within 120 s"
                time.sleep(0.3)
        script = "\n\n".join(runnable(b, port) for b in blocks)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-x", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, (
            f"{document}: a command failed\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

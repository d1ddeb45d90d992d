"""Exchange tests: the runtime of ``tests/conftest.py`` with room for a whole recipe's
BatchML in one request (the mAb upstream export is ~270 kB; the shared fixture allows
200 kB), and small recipes written here: one with a diagram (BPMN DI) whose names are
hostile."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import users
from tests.support import ACCOUNTS, PASSWORD, make_runtime

#: a recipe with a layout: start -> user task (hostile name) -> gateway -> end
HOSTILE_NAME = '<script>alert("x")</script> & "quotes" <img src=x onerror=alert(1)>'
DRAWN = (Path(__file__).resolve().parent / "drawn.bpmn").read_text(encoding="utf-8")


def drawn_bpmn(name: str = HOSTILE_NAME) -> bytes:
    from xml.sax.saxutils import quoteattr

    return DRAWN.replace('"{name}"', quoteattr(name)).encode("utf-8")


@pytest.fixture
def runtime(db_url):
    """As ``tests/conftest.py``'s ``runtime``, with a 2 MB request limit."""
    rt = make_runtime(db_url, max_request_bytes=2_000_000, job_max_attempts=1)
    for name, roles in ACCOUNTS.items():
        users.create_user(rt, name, name.title(), roles, by="test", password=PASSWORD)
    yield rt
    rt.close()

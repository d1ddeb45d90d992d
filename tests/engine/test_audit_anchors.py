"""The audit key and the anchors: the key lives outside the database (generated 0600, or
``BATCHLINE_AUDIT_KEY``); anchored heads, written to an append-only file and POSTed to a
real HTTP sink, reveal a trail rolled back to an earlier, consistent state."""

from __future__ import annotations

import json
import os
import stat

import pytest
from sqlalchemy import delete, update

from engine import audit
from engine.audit.keys import AuditKeyError, AuditKeys, anchor_path, key_path
from engine.config import load_settings
from engine.models import AuditEvent, AuditHead
from tests.support import make_runtime

from .http_receiver import Receiver
from .tamper import as_owner
from .test_audit import signed_trail


def _verify(rt, **kw):
    with rt.transaction() as s:
        return audit.verify(s, settings=rt.settings, **kw)


def test_the_key_file_is_generated_once_with_0600_beside_the_database(rt):
    path = key_path(rt.settings)
    if rt.settings.database_url.startswith("sqlite"):
        assert path.parent.joinpath("batchline.db").exists()  # beside the database
    else:  # the PostgreSQL test database is emptied per test; its key file outlives that
        path.unlink(missing_ok=True)
    assert not path.exists()
    signed_trail(rt)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = path.read_text().strip()
    assert len(secret) == 64 and int(secret, 16) >= 0
    with rt.transaction() as s:
        assert audit.session_keys(s) == AuditKeys.from_secret(secret)
    again = make_runtime(rt.settings.database_url)  # another process: the same key, read not regenerated
    try:
        assert _verify(again).ok and path.read_text().strip() == secret
    finally:
        again.close()


def test_a_key_file_others_can_read_is_refused_and_nothing_is_recorded(rt):
    signed_trail(rt)
    path = key_path(rt.settings)
    os.chmod(path, 0o644)
    try:
        fresh = make_runtime(rt.settings.database_url)
        with pytest.raises(AuditKeyError) as refused:
            audit_entries_before = _count(rt)
            with fresh.transaction() as s:
                audit.record(s, user="x", action="test", object_type="t", object_id="1")
        assert refused.value.code == "audit_key_exposed" and "chmod 600" in refused.value.message
        assert _count(rt) == audit_entries_before == 12
        fresh.close()
    finally:
        os.chmod(path, 0o600)


def _count(rt) -> int:
    with rt.transaction() as s:
        return len(s.query(AuditEvent.id).all())


def test_the_key_from_the_environment_and_too_short_keys(monkeypatch, tmp_path):
    monkeypatch.setenv("BATCHLINE_AUDIT_KEY", "k" * 40)
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/b.db")
    assert audit.load_keys(settings) == AuditKeys.from_secret("k" * 40)
    assert "kkkk" not in repr(settings)  # never printed with the settings
    assert not key_path(settings).exists()  # no file when the key is given
    monkeypatch.setenv("BATCHLINE_AUDIT_KEY", "short")
    with pytest.raises(AuditKeyError) as refused:
        audit.load_keys(load_settings(database_url=f"sqlite:///{tmp_path}/b.db"))
    assert refused.value.code == "audit_key_invalid"


def test_heads_are_anchored_to_the_file_and_the_sink(db_url, tmp_path):
    with Receiver() as sink:
        rt = make_runtime(
            db_url, audit_anchor_every=4, audit_anchor_file=str(tmp_path / "anchors"), audit_anchor_url=sink.url + "/a"
        )
        try:
            signed_trail(rt)
            # first keyed entry (1: the import's transaction), then each time 4 entries were crossed
            lines = [json.loads(x) for x in (tmp_path / "anchors").read_text().splitlines()]
            assert [x["id"] for x in lines] == [1, 5, 8, 12]
            posted = [json.loads(r["body"]) for r in sink.requests]
            assert [(p["id"], p["hash"], p["mac"]) for p in posted] == [(x["id"], x["hash"], x["mac"]) for x in lines]
            assert {r["path"] for r in sink.requests} == {"/a"} and posted[0]["type"] == "batchline.audit.anchor"
            assert stat.S_IMODE((tmp_path / "anchors").stat().st_mode) == 0o600
            on_demand = audit.anchor(rt)
            assert (on_demand["id"], on_demand["sink"]) == (12, sink.url + "/a") and len(sink.requests) == 5
            result = _verify(rt, anchors=True)
            assert result.ok and result.anchors == {
                "file": str(tmp_path / "anchors"),
                "anchors": 5,
                "newest": 12,
                "problems": [],
            }
            # rolled back to an earlier, consistent state: entry 12 (batch complete) gone, head moved back
            with as_owner(rt) as s:
                ten = s.get(AuditEvent, 11)
                s.execute(delete(AuditEvent).where(AuditEvent.id == 12))
                s.execute(update(AuditHead).values(last_id=11, last_hash=ten.hash))
            assert _verify(rt).ok  # consistent without the anchors ...
            assert _verify(rt, anchors=True).problems == [  # ... but not with them
                "anchor line 4: entry 12 is no longer in the trail (truncated or rolled back)",
                "anchor line 5: entry 12 is no longer in the trail (truncated or rolled back)",
            ]
        finally:
            rt.close()


def test_forged_damaged_or_removed_anchors_are_named(rt):
    signed_trail(rt)
    path = anchor_path(rt.settings)
    assert _verify(rt, anchors=True).ok
    with open(path, "a") as fh:
        fh.write(json.dumps({"id": 12, "hash": "f" * 64, "at": "2026-01-01T00:00:00.000000Z", "mac": "0" * 64}) + "\n")
        fh.write("not json\n")
    assert _verify(rt, anchors=True).problems == [
        "anchor line 2: not sealed with the audit key (forged or damaged)",
        "anchor line 3: not an anchor (damaged)",
    ]
    path.unlink()
    assert _verify(rt, anchors=True).problems == [
        f"no anchor in {path} although the trail has 12 keyed entries (anchors removed?)"
    ]


def test_a_sink_that_fails_never_fails_a_step_but_fails_an_anchor_on_demand(db_url, tmp_path):
    with Receiver() as sink:
        sink.default = (500, {"error": "down"})
        rt = make_runtime(db_url, audit_anchor_file=str(tmp_path / "anchors"), audit_anchor_url=sink.url)
        try:
            signed_trail(rt)  # the automatic anchor's POST failed: logged, the steps stored
            assert len(sink.requests) == 1 and _count(rt) == 12
            with pytest.raises(audit.AnchorFailed) as failed:
                audit.anchor(rt)
            assert failed.value.code == "audit_anchor_failed" and "500" in failed.value.message
            # the file got both lines all the same
            assert [json.loads(x)["id"] for x in (tmp_path / "anchors").read_text().splitlines()] == [1, 12]
        finally:
            rt.close()

"""What a signature is bound to (21 CFR 11.70), pinned independently of the code under
test: the SHA-256 of a fixed step is written here as a literal, together with the exact
canonical text it is the hash of, so leaving any field out of ``signed_content`` (the
values, the units, the meaning...) fails. Stored signatures of a real step are re-computed
here with hashlib, not with ``signed_content``."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from engine import batches
from engine.batches import signed_content
from engine.models import Batch, Signature, Step
from tests.support import approved_recipe

from .duty_tables import holder, recipe_files

FORM_HASH = "ab" * 32
#: exactly what a "Performed" signature of FIXED covers: canonical JSON, keys sorted
SIGNED_TEXT = (
    '{"batch":"B-LIT-1","bpmn_id":"weigh","form_hash":"' + FORM_HASH + '","meaning":"Performed","seq":7,'
    '"task_id":"6f1c3a52-0d4e-4c59-9f3e-2b7a8d1e5c40","units":{"mass_g":"g"},'
    '"values":{"comment":"ok","mass_g":"100.2"}}'
)
SIGNED_HASH = "a3f8d4bb0a01d3161adf80e9a89e678a17246e22e7d5de01d39801388100e15c"


def fixed_step(**changes) -> Step:
    fields = dict(
        seq=7,
        task_id="6f1c3a52-0d4e-4c59-9f3e-2b7a8d1e5c40",
        bpmn_id="weigh",
        form_hash=FORM_HASH,
        values={"mass_g": "100.2", "comment": "ok"},
        units={"mass_g": "g"},
    )
    fields.update(changes)
    return Step(**fields)


def test_the_literal_is_the_hash_of_the_literal_text():
    assert hashlib.sha256(SIGNED_TEXT.encode("utf-8")).hexdigest() == SIGNED_HASH


def test_signed_content_of_a_fixed_step_is_the_literal_hash():
    assert signed_content("B-LIT-1", fixed_step(), "Performed") == SIGNED_HASH


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"task_id": "6f1c3a52-0d4e-4c59-9f3e-2b7a8d1e5c41"},
        {"bpmn_id": "weigh2"},
        {"form_hash": "cd" * 32},
        {"form_hash": None},
        {"values": {"mass_g": "100.3", "comment": "ok"}},
        {"values": {"mass_g": "100.2"}},
        {"values": {}},
        {"units": {"mass_g": "kg"}},
        {"units": {}},
    ],
    ids=lambda c: "+".join(f"{k}={v}" for k, v in c.items()),
)
def test_every_signed_field_changes_the_hash(change):
    assert signed_content("B-LIT-1", fixed_step(**change), "Performed") != SIGNED_HASH


def test_batch_and_meaning_change_the_hash():
    assert signed_content("B-LIT-2", fixed_step(), "Performed") != SIGNED_HASH
    assert signed_content("B-LIT-1", fixed_step(), "Released") != SIGNED_HASH


def test_stored_signatures_recompute_from_the_record(rt):
    """A real signed and witnessed step: each stored content hash is the SHA-256 of the
    stored row's fields, computed here without ``signed_content``."""
    files, forms = recipe_files()
    approved_recipe(rt, files, forms=forms, user="qa.author")
    batches.start_batch(rt, "duties", "SIG-1", user="sup.start")
    tasks = {t["bpmn_id"]: t["id"] for t in batches.ready_tasks(rt, "SIG-1")}
    qa, op, sup = holder(("qa",)), holder(("operator",)), holder(("supervisor",))
    batches.complete_task(rt, "SIG-1", tasks["qa_released"], {"reading": "7.5"}, user=qa.username, signer=qa)
    batches.complete_task(
        rt, "SIG-1", tasks["operator_witness_supervisor"], {"reading": "2"}, user=op.username, signer=op, witness=sup
    )
    with rt.transaction() as s:
        batch = s.scalars(select(Batch).where(Batch.batch_id == "SIG-1")).one()
        rows = {st.seq: st for st in s.scalars(select(Step).where(Step.batch_id == batch.id))}
        sigs = list(s.scalars(select(Signature).where(Signature.batch_id == batch.id).order_by(Signature.id)))
        assert [(g.step_seq, g.role, g.meaning) for g in sigs] == [
            (1, "performer", "Released"),
            (2, "performer", "Performed"),
            (2, "witness", "Verified"),
        ]
        assert rows[1].values == {"reading": "7.5"} and rows[2].values == {"reading": "2"}
        for sig in sigs:
            st = rows[sig.step_seq]
            text = json.dumps(
                {
                    "batch": "SIG-1",
                    "seq": st.seq,
                    "task_id": st.task_id,
                    "bpmn_id": st.bpmn_id,
                    "form_hash": st.form_hash,
                    "values": st.values,
                    "units": st.units,
                    "meaning": sig.meaning,
                },
                sort_keys=True,
                separators=(",", ":"),
                ensure_ascii=False,
            )
            assert sig.content_hash == hashlib.sha256(text.encode("utf-8")).hexdigest()

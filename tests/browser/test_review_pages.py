"""QA's review pages without a browser (Flask's test client, fast): who sees the decision
controls and the Review entry, CSRF on the review forms, a signature needed for each
decision, and the permission matrix applied to every POST."""

from __future__ import annotations

from engine import batches

from .conftest import password
from .test_review_ui import reviewable_batch
from .test_ui_pages import app, client, log_in, token  # noqa: F401 - fixtures


def test_qa_sees_the_review_controls_others_only_read(client, app, runtime, new_batch):  # noqa: F811
    batch_id, ids = reviewable_batch(runtime, new_batch)
    log_in(client, "qa.dora")
    home = client.get("/").text
    assert 'href="/review/"' in home
    page = client.get(f"/review/{batch_id}").text
    assert "3 exceptions in 2 record entries" in page
    assert 'data-dispose="accept"' in page and 'data-decide="release"' in page
    assert 'id="performer-note"' in page  # Dora witnessed the transfer

    for who in ("op.anna", "sup.carl"):
        other = app.test_client()
        log_in(other, who)
        assert 'href="/review/"' not in other.get("/").text
        page = other.get(f"/review/{batch_id}")
        assert page.status_code == 200 and "3 exceptions in 2 record entries" in page.text
        assert "data-dispose" not in page.text and "data-decide" not in page.text
        r = other.post(
            f"/review/{batch_id}/exceptions/{ids['oot']}",
            data={
                "csrf_token": token(page.text),
                "decision": "accept",
                "justification": "x",
                "password": password(who),
            },
        )
        assert r.status_code == 403
        r = other.post(f"/review/{batch_id}/release", data={"csrf_token": token(page.text), "password": password(who)})
        assert r.status_code == 403
    assert all(e["status"] == "open" for e in batches.exceptions(runtime, batch_id))


def test_review_forms_need_csrf_justification_and_signature(client, runtime, new_batch):  # noqa: F811
    batch_id, ids = reviewable_batch(runtime, new_batch)
    log_in(client, "qa.dora")
    url = f"/review/{batch_id}/exceptions/{ids['oot']}"
    r = client.post(url, data={"decision": "accept", "justification": "fine", "password": password("qa.dora")})
    assert r.status_code == 400 and "expired" in r.text
    csrf = token(client.get(f"/review/{batch_id}").text)
    r = client.post(url, data={"csrf_token": csrf, "decision": "accept", "justification": " ", "password": "x"})
    assert r.status_code == 422 and "justification" in r.text
    r = client.post(
        url, data={"csrf_token": csrf, "decision": "accept", "justification": "fine", "signer_id": "qa.dora"}
    )
    assert r.status_code == 401 and "Enter your password" in r.text
    r = client.post(
        url,
        data={
            "csrf_token": csrf,
            "decision": "accept",
            "justification": "fine",
            "signer_id": "qa.dora",
            "password": "wrong",
        },
    )
    assert r.status_code == 401 and "not accepted" in r.text
    r = client.post(url, data={"csrf_token": csrf, "decision": "maybe", "justification": "fine", "password": "x"})
    assert r.status_code == 422
    r = client.post(f"/review/{batch_id}/reject", data={"csrf_token": csrf, "comment": "", "password": "x"})
    assert r.status_code == 422 and "reason" in r.text
    assert all(e["status"] == "open" for e in batches.exceptions(runtime, batch_id))

    key = "k-" + batch_id
    data = {"csrf_token": csrf, "decision": "accept", "justification": "fine", "idempotency_key": key}
    r = client.post(url, data={**data, "signer_id": "qa.dora", "password": password("qa.dora")})
    assert r.status_code == 303
    r = client.post(url, data={**data, "password": password("qa.dora")})  # sent again: the first result
    assert r.status_code == 303
    (oot,) = [e for e in batches.exceptions(runtime, batch_id) if e["id"] == ids["oot"]]
    assert oot["status"] == "accepted" and len(oot["dispositions"]) == 1

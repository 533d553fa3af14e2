"""Handing bundles to the inbox over HTTP (`POST /api/inbox`), as a producer on another machine does."""

from __future__ import annotations

from musingly_pipeline.bundles.staging import fetch_staged, pushes_after
from musingly_pipeline_tests.conftest import EXAMPLES


def test_a_pushed_bundle_is_staged_and_handed_to_the_sensor(live, tmp_path):
    body = (EXAMPLES / "ml-curriculum.json").read_bytes()
    url = live.manager.database_url
    before = pushes_after(url, 0)
    with live.client() as client:
        pushed = client.post("/api/inbox", params={"name": "ml.json"}, content=body,
                             headers={"Content-Type": "application/json"})
        assert pushed.status_code == 202, pushed.text
        push = pushed.json()
        assert push["name"] == "ml.json" and push["size"] == len(body) and push["duplicate"] is False
        again = client.post("/api/inbox", params={"name": "ml.json"}, content=body).json()
        assert again["duplicate"] is True and again["sha256"] == push["sha256"]
        fix = client.post("/api/inbox", params={"name": "incremental/fix.json"},
                          content=(EXAMPLES / "incremental" / "hotfix-v2.1.1.json").read_bytes()).json()
    assert fetch_staged(url, push["sha256"], tmp_path).read_bytes() == body  # the very bytes sent
    new = pushes_after(url, max([p.id for p in before], default=0))
    assert [(p.name, p.duplicate, p.incremental) for p in new] == [
        ("ml.json", False, False), ("ml.json", True, False), ("incremental/fix.json", False, True)]
    assert fix["push_id"] == new[-1].id


def test_a_push_is_refused_with_a_code_for_a_bad_name_or_a_body_that_is_no_bundle(live):
    with live.client() as client:
        for name in ("../escape.json", "sub/dir.json", ".hidden.json", "notes.txt", "x.json.part"):
            refused = client.post("/api/inbox", params={"name": name}, content=b"{}")
            assert refused.status_code == 422, (name, refused.text)
        for body in (b"", b"[1, 2]", b"not json"):
            refused = client.post("/api/inbox", params={"name": "x.json"}, content=body)
            assert refused.status_code == 422 and refused.json()["code"] == "INBOX_PUSH_REFUSED", body
    with live.client(token=None) as anonymous:
        assert anonymous.post("/api/inbox", params={"name": "x.json"}, content=b"{}").status_code == 401

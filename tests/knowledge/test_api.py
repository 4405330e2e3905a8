"""The knowledge API: uploads, their problems, lists, deletions (no worker runs here)."""

from __future__ import annotations

import hashlib
import uuid

from tests.knowledge import documents
from tests.knowledge.conftest import Knowledge

PROBLEM = "application/problem+json"


async def test_upload_lists_pending_and_the_same_bytes_again_change_nothing(
    knowledge: Knowledge,
) -> None:
    creator = await knowledge.creator("kapi")
    await knowledge.program(creator, "habits")
    content = b"Drink water before every meal."
    first = await knowledge.upload(creator, "habits", "water.txt", content, "text/plain")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["state"] == "pending"
    assert body["origin"] == "upload"
    assert body["content_type"] == "text/plain"
    assert body["size_bytes"] == len(content)
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    again = await knowledge.upload(creator, "habits", "water.txt", content, "text/plain")
    assert again.status_code == 200
    assert again.json()["document_id"] == body["document_id"]
    assert again.json()["updated_at"] == body["updated_at"]
    changed = await knowledge.upload(creator, "habits", "water.txt", b"Drink tea.", "text/plain")
    assert changed.status_code == 200
    assert changed.json()["document_id"] == body["document_id"]
    assert changed.json()["sha256"] == hashlib.sha256(b"Drink tea.").hexdigest()
    listed = await knowledge.documents(creator, "habits")
    assert [d["document_id"] for d in listed] == [body["document_id"]]


async def test_problems_for_what_cannot_be_ingested(knowledge: Knowledge) -> None:
    creator = await knowledge.creator("kbad")
    await knowledge.program(creator, "habits")
    too_big = b"a" * 2_000_001
    cases = [
        (("big.txt", too_big, "text/plain"), 413, "payload-too-large"),
        (("photo.png", b"\x89PNG\r\n", "image/png"), 415, "unsupported-media-type"),
        (("notes.xyz", b"hello", "application/octet-stream"), 415, "unsupported-media-type"),
        (("fake.pdf", b"hello, not a pdf", "application/pdf"), 422, "validation"),
        (("empty.txt", b"", "text/plain"), 422, "validation"),
    ]
    for (name, content, media), status, slug in cases:
        response = await knowledge.upload(creator, "habits", name, content, media)
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/" + slug), response.text
    missing = await knowledge.upload(creator, "no-such", "a.txt", b"x", "text/plain")
    assert missing.status_code == 404
    for name in ("bad\x00name", "x" * 256):
        refused = await knowledge.client.post(
            "/v1/programs/habits/knowledge",
            files={"file": ("a.txt", b"x", "text/plain")},
            data={"document_name": name},
            headers=creator.headers,
        )
        assert refused.status_code == 422, refused.text
    assert await knowledge.documents(creator, "habits") == []


async def test_type_from_the_extension_when_the_client_says_octet_stream(
    knowledge: Knowledge,
) -> None:
    creator = await knowledge.creator("kext")
    await knowledge.program(creator, "habits")
    cases = {
        "a.md": "text/markdown",
        "b.html": "text/html",
        "c.pdf": "application/pdf",
        "d.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    }
    content = {
        "a.md": b"# Title\n\ntext",
        "b.html": b"<p>text</p>",
        "c.pdf": documents.pdf(["text"]),
        "d.docx": documents.docx_file([("T", "text")]),
    }
    for name, expected in cases.items():
        response = await knowledge.upload(
            creator, "habits", name, content[name], "application/octet-stream"
        )
        assert response.status_code == 201, response.text
        assert response.json()["content_type"] == expected


async def test_pages_delete_and_spec_documents_stay(knowledge: Knowledge) -> None:
    creator = await knowledge.creator("kpage")
    program = await knowledge.program(creator, "habits")
    ids = []
    for n in range(3):
        response = await knowledge.upload(
            creator, "habits", f"n{n}.txt", f"note {n}".encode(), "text/plain"
        )
        ids.append(response.json()["document_id"])
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = await knowledge.client.get(
            f"/v1/programs/habits/knowledge{query}", headers=creator.headers
        )
        assert page.status_code == 200
        seen += [d["document_id"] for d in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    bad_cursor = await knowledge.client.get(
        "/v1/programs/habits/knowledge?cursor=nope", headers=creator.headers
    )
    assert bad_cursor.status_code == 400

    deleted = await knowledge.client.delete(
        f"/v1/programs/habits/knowledge/{ids[0]}", headers=creator.headers
    )
    assert deleted.status_code == 202
    assert [d["document_id"] for d in await knowledge.documents(creator, "habits")] == ids[1:]
    gone = await knowledge.client.get(
        f"/v1/programs/habits/knowledge/{ids[0]}", headers=creator.headers
    )
    assert gone.status_code == 404
    again = await knowledge.client.delete(
        f"/v1/programs/habits/knowledge/{ids[0]}", headers=creator.headers
    )
    assert again.status_code == 404
    # The row waits for the worker, marked for deletion.
    rows = await knowledge.superuser(
        "SELECT state FROM knowledge_documents WHERE document_id = $1", uuid.UUID(ids[0])
    )
    assert [r["state"] for r in rows] == ["deleting"]

    # A spec document (written by the operator) is not deleted through the API.
    spec = await knowledge.tenants.owner(
        creator.creator_id,
        "INSERT INTO knowledge_documents (creator_id, program_id, name, origin, content_type,"
        " content, size_bytes, sha256) VALUES ($1, $2, 'guide', 'spec', 'text/plain', 'x', 1,"
        " 'abc') RETURNING document_id",
        creator.creator_id,
        program,
    )
    refused = await knowledge.client.delete(
        f"/v1/programs/habits/knowledge/{spec[0]['document_id']}", headers=creator.headers
    )
    assert refused.status_code == 409
    assert "spec.knowledge" in refused.json()["detail"]

"""Parsing, chunking and format detection on their own (no stack)."""

from __future__ import annotations

import itertools

import pytest

from coachops_runtime.knowledge import formats
from coachops_runtime.knowledge.chunking import SEPARATOR, chunk
from coachops_runtime.knowledge.embedding import ollama_name
from coachops_runtime.knowledge.parsing import ParseError, Section, parse
from tests.knowledge import documents


def test_chunk_offsets_point_into_the_extracted_text_and_neighbours_overlap() -> None:
    sections = [
        Section(documents.filler(400, 0), page=1),
        Section(documents.filler(400, 5), page=2),
    ]
    text = SEPARATOR.join(s.text for s in sections)
    chunks = chunk(sections, words=50, overlap=0.2)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for piece in chunks:
        assert text[piece.start : piece.end] == piece.text
        assert len(piece.text.split()) <= 50
    # A chunk never spans two pages.
    first_page_end = len(sections[0].text)
    for piece in chunks:
        assert piece.page == (1 if piece.end <= first_page_end else 2)
        assert not (piece.start < first_page_end < piece.end)
    same_page = [(a, b) for a, b in itertools.pairwise(chunks) if a.page == b.page]
    assert same_page
    assert all(b.start < a.end for a, b in same_page)  # overlap


def test_markdown_and_docx_sections_follow_headings() -> None:
    markdown = parse(formats.MARKDOWN, b"intro\n\n# One\n\nfirst *text*\n\n## Two\n\n- a\n- b\n")
    assert [(s.title, s.text) for s in markdown] == [
        ("", "intro"),
        ("One", "first text"),
        ("Two", "a\n\nb"),
    ]
    docx = parse(formats.DOCX, documents.docx_file([("Sleep", "Bed at ten."), ("Food", "Greens.")]))
    assert [(s.title, s.text) for s in docx] == [("Sleep", "Bed at ten."), ("Food", "Greens.")]


def test_html_keeps_text_and_drops_scripts() -> None:
    (section,) = parse(
        formats.HTML,
        b"<html><head><title>T</title><style>p{}</style></head>"
        b"<body><p>Visible</p><script>hidden()</script></body></html>",
    )
    assert section.title == "T"
    assert "Visible" in section.text
    assert "hidden" not in section.text


@pytest.mark.parametrize(
    ("content_type", "data", "reason"),
    [
        (formats.PDF, documents.corrupt_pdf("x " * 200), "PDF cannot be read"),
        (formats.PDF, documents.encrypted_pdf("secret"), "encrypted"),
        (formats.PDF, documents.pdf([""]), "holds no text"),
        (formats.DOCX, b"PK\x03\x04not a zip", "DOCX file cannot be read"),
        (formats.TEXT, b"\xff\xfe\xfa", "not UTF-8"),
    ],
)
def test_unreadable_documents_give_a_reason(content_type: str, data: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(content_type, data)


def test_detect_prefers_the_declared_type_then_the_extension() -> None:
    assert formats.detect("a.bin", "text/markdown; charset=utf-8") == formats.MARKDOWN
    assert formats.detect("a.md", "application/octet-stream") == formats.MARKDOWN
    assert formats.detect("a.md", "text/x-markdown") == formats.MARKDOWN
    assert formats.detect("A.PDF", "") == formats.PDF
    with pytest.raises(formats.UnsupportedFormatError):
        formats.detect("a.png", "image/png")
    with pytest.raises(formats.UnsupportedFormatError):
        formats.detect("a.pdf", "image/png")  # a declared type that is not generic wins
    assert formats.looks_like(formats.PDF, b"%PDF-1.7")
    assert not formats.looks_like(formats.DOCX, b"%PDF-1.7")


def test_model_names_follow_the_operators_registry() -> None:
    assert ollama_name("coachops/minilm:latest", "") == "coachops/minilm:latest"
    assert ollama_name("coachops/minilm:latest", "127.0.0.1:5000") == (
        "127.0.0.1:5000/coachops/minilm:latest"
    )
    assert ollama_name("registry.example/a/b:1", "127.0.0.1:5000") == "registry.example/a/b:1"

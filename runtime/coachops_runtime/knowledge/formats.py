"""The document formats ingestion accepts, told apart by declared type, extension and bytes."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Final

TEXT: Final = "text/plain"
MARKDOWN: Final = "text/markdown"
HTML: Final = "text/html"
PDF: Final = "application/pdf"
DOCX: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SUPPORTED: Final = frozenset({TEXT, MARKDOWN, HTML, PDF, DOCX})
_BY_EXTENSION: Final = {
    ".txt": TEXT,
    ".text": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
    ".docx": DOCX,
}
# Clients label uploads loosely: these mean nothing about the format.
_GENERIC: Final = frozenset({"", "application/octet-stream", "binary/octet-stream"})


class UnsupportedFormatError(ValueError):
    """Neither the declared type nor the file name names a supported format."""


def detect(name: str, declared: str | None) -> str:
    """The content type of an upload: the declared one when supported (parameters such as
    ``charset`` dropped), else the one its file extension names."""
    media = (declared or "").split(";", 1)[0].strip().lower()
    if media == "text/x-markdown":
        media = MARKDOWN
    if media in SUPPORTED:
        return media
    by_name = _BY_EXTENSION.get(PurePosixPath(name).suffix.lower())
    if by_name is not None and (media in _GENERIC or media.startswith("text/")):
        return by_name
    shown = media or "no type"
    raise UnsupportedFormatError(
        f"{shown} ({name}) is not supported: upload plain text, Markdown, HTML, PDF or DOCX"
    )


def looks_like(content_type: str, data: bytes) -> bool:
    """Whether the bytes start as the format does (PDF header, DOCX zip); text passes."""
    if content_type == PDF:
        return data.lstrip()[:5] == b"%PDF-"
    if content_type == DOCX:
        return data[:4] == b"PK\x03\x04"
    return True

"""Bytes of a document to text sections, each with its page (PDF) or section title.

Parsers run on untrusted files and raise what their format's bugs make them raise, so
``parse`` turns any failure into ``ParseError`` with a reason a creator can act on: the
document fails, the worker goes on. CPU-bound: callers run it in a thread.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import docx
import pypdf
from markdown_it import MarkdownIt
from pypdf.errors import FileNotDecryptedError
from selectolax.lexbor import LexborHTMLParser

from coachops_runtime.knowledge import formats


@dataclass(frozen=True)
class Section:
    text: str
    page: int | None = None  # 1-based, PDFs only
    title: str = ""  # the heading the text sits under, when the format has headings


class ParseError(ValueError):
    """The document cannot be read; the message says why."""


def parse(content_type: str, data: bytes) -> list[Section]:
    """The document's text sections; ParseError when unreadable or without text."""
    try:
        sections = _PARSERS[content_type](data)
    except ParseError:
        raise
    except KeyError as error:
        if content_type not in _PARSERS:
            raise ParseError(f"unsupported content type {content_type}") from error
        raise ParseError(f"the {_label(content_type)} is damaged: {error}") from error
    except Exception as error:  # a damaged file may break a parser anywhere
        reason = str(error) or type(error).__name__
        raise ParseError(f"the {_label(content_type)} cannot be read: {reason}") from error
    kept = [s for s in sections if s.text.strip()]
    if not kept:
        raise ParseError(f"the {_label(content_type)} holds no text")
    return kept


def _label(content_type: str) -> str:
    return {
        formats.PDF: "PDF",
        formats.DOCX: "DOCX file",
        formats.HTML: "HTML page",
        formats.MARKDOWN: "Markdown file",
    }.get(content_type, "text file")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ParseError(f"the text is not UTF-8 (byte {error.start})") from error


def _text(data: bytes) -> list[Section]:
    return [Section(_decode(data))]


def _markdown(data: bytes) -> list[Section]:
    """Plain text of the rendered blocks, one section per heading."""
    sections: list[Section] = []
    title, blocks = "", list[str]()
    tokens = MarkdownIt("commonmark").parse(_decode(data))
    in_heading = False
    for token in tokens:
        if token.type == "heading_open":
            if blocks:
                sections.append(Section("\n\n".join(blocks), title=title))
            title, blocks, in_heading = "", [], True
        elif token.type == "heading_close":
            in_heading = False
        elif token.type == "inline":
            text = "".join(
                "\n" if child.type in ("softbreak", "hardbreak") else child.content
                for child in token.children or []
            )
            if in_heading:
                title = text.strip()
            else:
                blocks.append(text)
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content.rstrip("\n"))
    if blocks:
        sections.append(Section("\n\n".join(blocks), title=title))
    return sections


def _html(data: bytes) -> list[Section]:
    tree = LexborHTMLParser(data.decode("utf-8", errors="replace"))
    title = tree.css_first("title")
    tree.strip_tags(["script", "style", "noscript", "template", "head"])
    body = tree.body or tree.root
    text = body.text(separator="\n", strip=True) if body is not None else ""
    return [Section(text, title=title.text(strip=True) if title is not None else "")]


def _pdf(data: bytes) -> list[Section]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        # An owner password alone (the empty user password opens it) still reads.
        try:
            opened = reader.decrypt("")
        except (FileNotDecryptedError, NotImplementedError) as error:
            raise ParseError(f"the PDF is encrypted and cannot be opened: {error}") from error
        if not opened:
            raise ParseError("the PDF is encrypted with a password: upload it without one")
    return [
        Section(page.extract_text() or "", page=number)
        for number, page in enumerate(reader.pages, start=1)
    ]


def _docx(data: bytes) -> list[Section]:
    document = docx.Document(io.BytesIO(data))
    sections: list[Section] = []
    title, lines = "", list[str]()
    for paragraph in document.paragraphs:
        style = paragraph.style.name if paragraph.style is not None else ""
        if style and (style.startswith("Heading") or style == "Title"):
            if lines:
                sections.append(Section("\n".join(lines), title=title))
            title, lines = paragraph.text.strip(), []
        elif paragraph.text.strip():
            lines.append(paragraph.text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    if lines:
        sections.append(Section("\n".join(lines), title=title))
    return sections


_PARSERS = {
    formats.TEXT: _text,
    formats.MARKDOWN: _markdown,
    formats.HTML: _html,
    formats.PDF: _pdf,
    formats.DOCX: _docx,
}

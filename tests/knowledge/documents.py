"""Documents made in the tests: PDFs (fpdf2, pypdf for encryption), DOCX (python-docx)."""

from __future__ import annotations

import io

import docx
import pypdf
from fpdf import FPDF

FILLER = (
    "Consistency beats intensity. Small habits, repeated daily, compound into lasting "
    "change. Track what you do, review it weekly, and adjust the plan when life changes. "
)


def filler(words: int, seed: int = 0) -> str:
    """Plain prose of about ``words`` words; ``seed`` varies it a little per page."""
    base = FILLER.split()
    return " ".join(f"{base[(i + seed) % len(base)]}" for i in range(words))


def pdf(pages: list[str]) -> bytes:
    """A PDF with one page per text (core font, so latin-1 text only)."""
    document = FPDF()
    document.set_font("Helvetica", size=11)
    for text in pages:
        document.add_page()
        document.multi_cell(0, 6, text)
    return bytes(document.output())


def encrypted_pdf(text: str, password: str = "s3cret") -> bytes:
    reader = pypdf.PdfReader(io.BytesIO(pdf([text])))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corrupt_pdf(text: str) -> bytes:
    """A PDF header and a truncated body: it starts like a PDF and cannot be read."""
    whole = pdf([text])
    return whole[: len(whole) // 3]


def docx_file(sections: list[tuple[str, str]]) -> bytes:
    """A DOCX with a heading and a paragraph per (heading, text)."""
    document = docx.Document()
    for heading, text in sections:
        document.add_heading(heading, level=1)
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()

"""The new text of a reply: the quoted earlier mail and the signature cut off.

Mail clients quote the message they answer below an attribution line ("On <date>, <name>
wrote:", in several languages), below Outlook's "-----Original Message-----" or a
"From: ... Sent: ..." block, or as lines starting with ">". Everything from the first such
marker on is dropped, as is a signature after the standard "-- " line. Should nothing be
left (a mail that only quotes), the text is empty and the mail is not stored.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^\s*(On\b.*\bwrote:"  # English (Gmail, Apple Mail, Thunderbird)
    r"|Le\b.*\ba écrit\s*:"  # French
    r"|Am\b.*\bschrieb\b.*:"  # German
    r"|El\b.*\bescribió:"  # Spanish
    r"|Il\b.*\bha scritto:"  # Italian
    r"|Em\b.*\bescreveu:"  # Portuguese
    r")\s*$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht)\s*-{2,}\s*$", re.I)
_OUTLOOK_FROM = re.compile(r"^\s*(From|Von|De|Da):\s.+$")
_OUTLOOK_NEXT = re.compile(r"^\s*(Sent|Gesendet|Envoyé|Enviado|Inviato|Date|To|Subject):\s", re.I)


def _attribution_at(lines: list[str], index: int) -> int:
    """How many lines an attribution starting at ``index`` spans (0: none). Long ones are
    wrapped over two lines by some clients."""
    if _ATTRIBUTION.match(lines[index]):
        return 1
    if index + 1 < len(lines) and _ATTRIBUTION.match(f"{lines[index]} {lines[index + 1]}"):
        return 2
    return 0


def strip_quoted(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if line.rstrip() == "--":  # "-- " starts the signature
            break
        if line.lstrip().startswith(">") or _ORIGINAL.match(line):
            break
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_NEXT.match(following) for following in lines[index + 1 : index + 4]
        ):
            break
        if _attribution_at(lines, index):
            break
        kept.append(line)
    return "\n".join(kept).strip()

"""Opt-out keywords of SMS and WhatsApp: STOP, START and HELP in several languages.

A message that is exactly one keyword (case and surrounding spaces or punctuation ignored)
changes consent or asks for help; it gets the answer below in the keyword's language and
no AI reply. The lists follow the carriers' (CTIA) standard words and their common
equivalents in Spanish, French, German, Italian and Portuguese.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Action = Literal["stop", "start", "help"]


@dataclass(frozen=True)
class Keyword:
    action: Action
    language: str


_WORDS: dict[str, dict[Action, tuple[str, ...]]] = {
    "en": {
        "stop": ("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "revoke"),
        "start": ("start", "unstop", "subscribe", "optin"),
        "help": ("help", "info"),
    },
    "es": {"stop": ("parar", "baja", "detener", "cancelar"), "start": ("alta", "comenzar"),
           "help": ("ayuda",)},
    "fr": {"stop": ("arret", "arreter", "desabonner"), "start": ("demarrer", "reprendre"),
           "help": ("aide",)},
    "de": {"stop": ("abmelden", "stopp", "beenden"), "start": ("anmelden",),
           "help": ("hilfe",)},
    "it": {"stop": ("annulla", "basta", "fermare"), "start": ("inizia", "iscrivi"),
           "help": ("aiuto",)},
    "pt": {"stop": ("sair", "cancelar", "parar"), "start": ("iniciar", "voltar"),
           "help": ("ajuda",)},
}  # fmt: skip

# A word in two lists (cancelar, parar) resolves to its first language's meaning; both
# meanings are the same action.
_INDEX: dict[str, Keyword] = {}
for _language, _actions in _WORDS.items():
    for _action, _words in _actions.items():
        for _word in _words:
            _INDEX.setdefault(_word, Keyword(_action, _language))

ANSWERS: dict[str, dict[Action, str]] = {
    "en": {
        "stop": "You are unsubscribed from {program} and will get no more messages. "
        "Reply START to resubscribe.",
        "start": "You are subscribed to {program} again. Reply STOP to unsubscribe, HELP for help.",
        "help": "{program}: an AI coach. Reply STOP to unsubscribe, START to resubscribe.",
    },
    "es": {
        "stop": "Te has dado de baja de {program}. Responde ALTA para volver.",
        "start": "Vuelves a estar suscrito a {program}. Responde BAJA para darte de baja.",
        "help": "{program}: un coach de IA. Responde BAJA para darte de baja, ALTA para volver.",
    },
    "fr": {
        "stop": "Vous êtes désabonné de {program}. Répondez DEMARRER pour vous réabonner.",
        "start": "Vous êtes à nouveau abonné à {program}. Répondez ARRET pour vous désabonner.",
        "help": "{program} : un coach IA. Répondez ARRET pour vous désabonner.",
    },
    "de": {
        "stop": "Sie sind von {program} abgemeldet. Antworten Sie ANMELDEN, um wieder "
        "Nachrichten zu erhalten.",
        "start": "Sie erhalten wieder Nachrichten von {program}. Antworten Sie STOPP zum Abmelden.",
        "help": "{program}: ein KI-Coach. Antworten Sie STOPP zum Abmelden.",
    },
    "it": {
        "stop": "Hai annullato l'iscrizione a {program}. Rispondi INIZIA per riscriverti.",
        "start": "Sei di nuovo iscritto a {program}. Rispondi ANNULLA per annullare.",
        "help": "{program}: un coach IA. Rispondi ANNULLA per annullare l'iscrizione.",
    },
    "pt": {
        "stop": "Você saiu de {program}. Responda INICIAR para voltar.",
        "start": "Você voltou a {program}. Responda SAIR para sair.",
        "help": "{program}: um coach de IA. Responda SAIR para sair, INICIAR para voltar.",
    },
}


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().strip(".!?¡¿ ").casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace(" ", "")


def keyword(text: str) -> Keyword | None:
    """The keyword ``text`` consists of, if any (``Stop``, ``stop!``, ``ARRÊT`` count)."""
    folded = _fold(text)
    if len(folded) > 16:
        return None
    return _INDEX.get(folded)


def answer(found: Keyword, program: str) -> str:
    return ANSWERS[found.language][found.action].format(program=program)

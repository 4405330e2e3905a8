"""What the end user reads when the safety check stops the AI: resources or a refusal.

The reply's sentences are in the program's language (its persona's primary language
subtag) when it is one of the eight below, else in English; resources are listed as the
creator wrote them, or the default set.
"""

from __future__ import annotations

from typing import Final

from coachops_crds.models import Safety, SafetyResource

DEFAULT_RESOURCES: Final = (
    SafetyResource(
        name="Emergency services",
        contact="your local emergency number: 112 (EU and many countries), 911 (US, Canada), "
        "999 (UK)",
    ),
    SafetyResource(
        name="Find A Helpline",
        contact="https://findahelpline.com (free, confidential lines by country)",
    ),
    SafetyResource(name="988 Suicide & Crisis Lifeline", contact="call or text 988", region="US"),
    SafetyResource(name="Samaritans", contact="116 123", region="UK and Ireland"),
    SafetyResource(name="TelefonSeelsorge", contact="0800 111 0 111", region="Germany"),
)

_CRISIS: Final = {
    "en": "It sounds like you are going through something serious, and you deserve support "
    "from a person right now. I'm an AI coach and can't help with this safely, but these can:",
    "de": "Das klingt nach etwas Ernstem, und du verdienst jetzt Unterstützung von einem "
    "Menschen. Ich bin ein KI-Coach und kann dabei nicht sicher helfen, diese Stellen schon:",
    "fr": "Cela ressemble à quelque chose de grave, et tu mérites le soutien d'une personne "
    "maintenant. Je suis un coach IA et je ne peux pas t'aider sans risque, mais eux peuvent :",
    "es": "Parece que estás pasando por algo serio y mereces el apoyo de una persona ahora. "
    "Soy un coach de IA y no puedo ayudarte con esto de forma segura, pero ellos sí:",
    "pt": "Parece que você está passando por algo sério e merece o apoio de uma pessoa agora. "
    "Sou um coach de IA e não posso ajudar com isso com segurança, mas eles podem:",
    "it": "Sembra che tu stia attraversando qualcosa di serio e meriti il sostegno di una "
    "persona adesso. Sono un coach IA e non posso aiutarti in modo sicuro, ma loro sì:",
    "nl": "Dit klinkt als iets ernstigs, en je verdient nu steun van een mens. Ik ben een "
    "AI-coach en kan hier niet veilig bij helpen, maar deze mensen wel:",
    "ja": "深刻な状況にいるように聞こえます。今は人からの支えが必要です。私はAIコーチなので安全に"
    "お手伝いできませんが、次の窓口が力になれます：",  # noqa: RUF001
}
_ESCALATED: Final = {
    "en": "I've let your coach know. The AI coach will stay quiet in this chat until they "
    "have been in touch.",
    "de": "Ich habe deinen Coach informiert. Der KI-Coach bleibt in diesem Chat still, bis "
    "er sich gemeldet hat.",
    "fr": "J'ai prévenu ton coach. Le coach IA restera silencieux dans cette conversation "
    "jusqu'à ce qu'il t'ait contacté.",
    "es": "He avisado a tu coach. El coach de IA no responderá en este chat hasta que se "
    "haya puesto en contacto contigo.",
    "pt": "Avisei o seu coach. O coach de IA ficará em silêncio nesta conversa até que ele "
    "entre em contato.",
    "it": "Ho avvisato il tuo coach. Il coach IA resterà in silenzio in questa chat finché "
    "non ti avrà contattato.",
    "nl": "Ik heb je coach op de hoogte gebracht. De AI-coach blijft stil in deze chat tot "
    "je coach contact heeft opgenomen.",
    "ja": "担当のコーチに知らせました。"
    "コーチから連絡があるまで、このチャットのAIコーチは返信しません。",
}
_REFUSAL: Final = {
    "en": "I'm sorry, but {topic} is not something I can help with in this program. "
    "Is there something else about your coaching I can help with?",
    "de": "Tut mir leid, bei {topic} kann ich in diesem Programm nicht helfen. Kann ich dir "
    "bei etwas anderem in deinem Coaching helfen?",
    "fr": "Désolé, je ne peux pas t'aider sur le sujet « {topic} » dans ce programme. "
    "Puis-je t'aider sur autre chose dans ton coaching ?",
    "es": "Lo siento, no puedo ayudarte con {topic} en este programa. ¿Hay algo más de tu "
    "coaching en lo que pueda ayudarte?",
    "pt": "Desculpe, não posso ajudar com {topic} neste programa. Posso ajudar com outra "
    "coisa do seu coaching?",
    "it": "Mi dispiace, non posso aiutarti con {topic} in questo programma. Posso aiutarti "
    "con qualcos'altro del tuo coaching?",
    "nl": "Sorry, met {topic} kan ik je in dit programma niet helpen. Kan ik je met iets "
    "anders in je coaching helpen?",
    "ja": "申し訳ありませんが、このプログラムでは「{topic}」についてはお手伝いできません。"
    "コーチングについて他にお手伝いできることはありますか？",  # noqa: RUF001
}


def _language(tag: str) -> str:
    primary = tag.split("-", 1)[0].lower()
    return primary if primary in _CRISIS else "en"


def _listed(name: str, region: str, contact: str) -> str:
    return f"- {name} ({region}): {contact}" if region else f"- {name}: {contact}"


def crisis_reply(language: str, safety: Safety) -> str:
    """The resources reply: the program's ``spec.safety.resources``, or the default set."""
    lang = _language(language)
    listed = [_listed(r.name, r.region, r.contact) for r in safety.resources] or [
        _listed(r.name, r.region, r.contact) for r in DEFAULT_RESOURCES
    ]
    return "\n".join([_CRISIS[lang], "", *listed, "", _ESCALATED[lang]])


def refusal(language: str, topic: str) -> str:
    return _REFUSAL[_language(language)].format(topic=topic)

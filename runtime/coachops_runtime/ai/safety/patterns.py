"""The curated pattern layer: core crisis phrases in eight languages.

Patterns run on ``normalize``d text (case-folded, ASCII apostrophes). Latin-script
patterns are anchored on word boundaries (``\\b``, Unicode-aware), so "cutting carbs" or
"suicide sprints" do not match; Japanese has no spaces, so its patterns are substrings
that include the inflection carrying the meaning (死にたい "want to die" is not a
substring of 死にたくない "do not want to die").

A pattern marked *negatable* is skipped when a negation word stands among the three words
before it in the same clause ("I would never kill myself", "je ne suis pas suicidaire").
Phrases whose meaning contains the negation ("I don't want to live") are not negatable.
That is cheap and catches the common form only; the embedding layer is the second net.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coachops_runtime.ai.safety.verdict import Category

_NEGATION = re.compile(
    r"\b(?:not|never|no|n't|don't|dont|didn't|won't|wouldn't|isn't|am not|"
    r"nicht|nie|niemals|kein|keine|"
    r"ne|n'|pas|jamais|"
    r"nunca|jamás|jamas|"
    r"não|nao|"
    r"non|mai|"
    r"niet|nooit|geen)\b|n't\b"
)
_CLAUSE_END = re.compile(r"[.,;:!?()\"\n]")
_WINDOW_WORDS = 3

_PARTNER_EN = (
    r"(?:he|she|they|my (?:husband|wife|partner|boyfriend|girlfriend|ex|father|dad|mother|"
    r"mom|mum|stepfather|stepdad|stepmother|parents|brother|sister|uncle|aunt|son|daughter|"
    r"coach|boss|teacher|roommate|flatmate))"
)

# "Suicide sprints" (shuttle runs) and friends are a drill, not a crisis.
_SUICIDE = r"\bsuicide\b(?! (?:sprint|drill|run|squat|burpee|line|shuttle|set|sets|workout)s?\b)"

# (category, language, pattern, negatable)
_RAW: list[tuple[Category, str, str, bool]] = [
    # ---------------------------------------------------------------- English
    (
        "self_harm",
        "en",
        r"\b(?:kill|killing|hurt|hurting|harm|harming|cut|cutting|burn|"
        r"burning|starve|starving|hang|hanging|drown|drowning|shoot|shooting) myself\b"
        r"(?! shaving| cooking| by accident)",
        True,
    ),
    ("self_harm", "en", r"\b(?:end|ending|take|taking) my (?:own )?life\b", True),
    ("self_harm", "en", rf"\bsuicidal\b|{_SUICIDE}", True),
    ("self_harm", "en", r"\b(?:want|wanna|wish|going) (?:to )?(?:die|be dead)\b", True),
    (
        "self_harm",
        "en",
        r"\b(?:don't|do not|no longer|never) want to (?:live|be alive|exist|"
        r"wake up)\b(?! (?:on|off|in|with|at|near)\b)",
        False,
    ),
    ("self_harm", "en", r"\b(?:better off|happier|fine) (?:dead|without me)\b", False),
    (
        "self_harm",
        "en",
        r"\bwish (?:i was|i were|i'd never been|i had never been) "
        r"(?:dead|born)\b|\b(?:done|finished) with (?:life|living)\b",
        True,
    ),
    ("self_harm", "en", r"\b(?:take|swallow|taking) all (?:of )?my (?:pills|meds|tablets)\b", True),
    (
        "self_harm",
        "en",
        r"\bno point (?:in|of) (?:going on|living|carrying on)\b|"
        r"\bwhat's the point of (?:going on|living)\b",
        False,
    ),
    ("self_harm", "en", r"\bno (?:reason|point) (?:to|in) (?:live|living|going on)\b", False),
    ("self_harm", "en", r"\bself[- ]?harm(?:ing)?\b", True),
    # Warning signs: feeling a burden, sleeping and never waking up.
    (
        "self_harm",
        "en",
        r"\b(?:i'm|i am|i feel like|i've become) (?:such |just )?a burden\b|"
        r"\bnever wake up (?:again)?\b",
        True,
    ),
    ("self_harm", "en", r"\bend it all\b", True),
    ("self_harm", "en", r"\bcan't go on (?:like this|anymore|any more|any longer)\b", False),
    (
        "abuse",
        "en",
        rf"\b{_PARTNER_EN}(?: (?:always|sometimes|often|still|again|keeps))? "
        r"(?:hits|hit|hitting|beats|beat|beating|punches|punched|slaps|slapped|kicks|kicked|"
        r"chokes|choked|strangles|strangled|rapes|raped|abuses|abused|threatens|threatened|"
        r"hurts|hurt|touches|touched) me\b(?! up)",
        True,
    ),
    (
        "abuse",
        "en",
        r"\b(?:i am|i'm|i was|i've been|being) (?:abused|raped|sexually "
        r"assaulted|molested|beaten up|beaten)\b",
        True,
    ),
    ("abuse", "en", r"\bthreaten(?:s|ed|ing)? to kill me\b", False),
    ("abuse", "en", r"\bdomestic (?:violence|abuse)\b", False),
    (
        "abuse",
        "en",
        r"\b(?:afraid|scared|terrified) (?:of|to go home to) my (?:husband|wife|"
        r"partner|boyfriend|girlfriend|father|dad|mother|mom|mum|stepfather|stepdad)\b",
        True,
    ),
    (
        "medical_emergency",
        "en",
        r"\b(?:chest pain|pain in my chest|chest (?:is|feels) "
        r"(?:tight|crushing))\b",
        True,
    ),
    ("medical_emergency", "en", r"\b(?:can't|cannot|can not) (?:breathe|catch my breath)\b", False),
    ("medical_emergency", "en", r"\b(?:having|had|have) a (?:heart attack|stroke|seizure)\b", True),
    (
        "medical_emergency",
        "en",
        r"\b(?:overdosed|took too many (?:pills|tablets)|swallowed "
        r"(?:a (?:whole )?bottle of|a handful of|all (?:of )?my) (?:pills|tablets|meds))\b",
        True,
    ),
    ("medical_emergency", "en", r"\b(?:call|need|get) (?:me )?an ambulance\b", True),
    (
        "medical_emergency",
        "en",
        r"\b(?:throat is (?:closing|swelling)|can't stop the "
        r"bleeding|bleeding (?:heavily|badly|a lot))\b",
        True,
    ),
    # ---------------------------------------------------------------- German
    (
        "self_harm",
        "de",
        r"\b(?:mich|mir) (?:umbringen|das leben nehmen|selbst verletzen|"
        r"ritzen|töten)\b",
        True,
    ),
    ("self_harm", "de", r"\bbring\w* mich um\b|\britze mich\b", True),
    ("self_harm", "de", r"\b(?:selbstmord\w*|suizid\w*)\b", True),
    (
        "self_harm",
        "de",
        r"\b(?:will|möchte|möchte lieber|wäre lieber) (?:sterben|tot sein|tot)\b",
        True,
    ),
    (
        "self_harm",
        "de",
        r"\bnicht mehr (?:leben|weiterleben|aufwachen)\b|\bnie (?:mehr|wieder) "
        r"aufwachen\b|\bbesser dran ohne mich\b|\bkeinen sinn mehr\b",
        False,
    ),
    (
        "abuse",
        "de",
        r"\b(?:er|sie|mein (?:mann|freund|vater|partner|ex|bruder|stiefvater)|"
        r"meine (?:frau|freundin|mutter|partnerin|eltern)) (?:schlägt|schlug|verprügelt|"
        r"bedroht|vergewaltigt|missbraucht|würgt|tritt) mich\b",
        True,
    ),
    (
        "abuse",
        "de",
        r"\bich (?:werde|wurde) (?:geschlagen|missbraucht|bedroht|vergewaltigt|"
        r"verprügelt)\b",
        True,
    ),
    ("abuse", "de", r"\bhäusliche gewalt\b", False),
    ("medical_emergency", "de", r"\bbrustschmerz\w*|schmerzen in der brust\b", True),
    (
        "medical_emergency",
        "de",
        r"\b(?:kann|bekomme|kriege) (?:nicht|keine) (?:mehr )?"
        r"(?:atmen|luft)\b",
        False,
    ),
    ("medical_emergency", "de", r"\b(?:herzinfarkt|schlaganfall|krampfanfall)\b", True),
    ("medical_emergency", "de", r"\b(?:krankenwagen|notarzt|zu viele tabletten)\b", True),
    # ---------------------------------------------------------------- French
    (
        "self_harm",
        "fr",
        r"\b(?:me suicider|me tuer|suicidaire|me scarifier|me faire du mal)\b|"
        rf"{_SUICIDE}",
        True,
    ),
    ("self_harm", "fr", r"\bmettre fin à (?:mes jours|ma vie)\b|\ben finir\b", True),
    ("self_harm", "fr", r"\b(?:envie de mourir|veux mourir|voudrais mourir)\b", True),
    (
        "self_harm",
        "fr",
        r"\bplus envie de vivre\b|\bne veux plus vivre\b|\bmieux sans moi\b|"
        r"\bplus aucune raison de (?:vivre|continuer)\b",
        False,
    ),
    (
        "abuse",
        "fr",
        r"\b(?:il|elle|mon (?:mari|copain|père|conjoint|compagnon|ex|frère)|"
        r"ma (?:femme|copine|mère|compagne)) me (?:frappe|bat|battait|frappait|viole|violait|"
        r"menace|étrangle)\b",
        True,
    ),
    (
        "abuse",
        "fr",
        r"\bje (?:suis|suis été|ai été) (?:battue?|violée?|frappée?|agressée?)\b",
        True,
    ),
    ("abuse", "fr", r"\bviolences? conjugales?\b", False),
    ("medical_emergency", "fr", r"\bdouleurs? (?:à|dans) la poitrine\b", True),
    (
        "medical_emergency",
        "fr",
        r"\b(?:je n'arrive (?:plus|pas) à respirer|je ne peux "
        r"(?:plus|pas) respirer)\b",
        False,
    ),
    ("medical_emergency", "fr", r"\b(?:crise cardiaque|infarctus|avc)\b", True),
    (
        "medical_emergency",
        "fr",
        r"\b(?:une ambulance|le samu|trop de (?:médicaments|cachets|"
        r"comprimés))\b",
        True,
    ),
    # ---------------------------------------------------------------- Spanish
    (
        "self_harm",
        "es",
        r"\b(?:suicidarme|suicidio|suicida|matarme|quitarme la vida|"
        r"hacerme daño)\b",
        True,
    ),
    ("self_harm", "es", r"\bquiero morir(?:me)?\b", True),
    (
        "self_harm",
        "es",
        r"\bmejor sin mí\b|\bno quiero seguir viviendo\b|\bsentido a la vida\b",
        False,
    ),
    ("self_harm", "es", r"\bno quiero (?:seguir )?vivir\b(?! (?:de|en|con)\b)", False),
    ("self_harm", "es", r"\bme corto (?:los brazos|las venas|las muñecas)\b", True),
    (
        "abuse",
        "es",
        r"\b(?:él|ella|mi (?:esposo|marido|novio|pareja|padre|ex|esposa|novia|"
        r"madre|padrastro)) me (?:pega|golpea|pegaba|golpeaba|viola|violó|amenaza|maltrata)\b",
        True,
    ),
    ("abuse", "es", r"\bviolencia (?:doméstica|de género)\b|\bme maltrata\b", False),
    ("medical_emergency", "es", r"\bdolor (?:en el|de) pecho\b", True),
    ("medical_emergency", "es", r"\bno puedo respirar\b", False),
    (
        "medical_emergency",
        "es",
        r"\b(?:ataque (?:al corazón|cardíaco)|infarto|derrame cerebral)"
        r"\b",
        True,
    ),
    ("medical_emergency", "es", r"\b(?:una ambulancia|demasiadas pastillas)\b", True),
    # ---------------------------------------------------------------- Portuguese
    (
        "self_harm",
        "pt",
        r"\b(?:me matar|suicídio|suicida|suicidar|me machucar|tirar (?:a )?"
        r"minha (?:própria )?vida)\b",
        True,
    ),
    ("self_harm", "pt", r"\bquero morrer\b", True),
    ("self_harm", "pt", r"\bmelhor sem mim\b|\bsentido em (?:continuar|viver)\b", False),
    ("self_harm", "pt", r"\bnão quero (?:mais )?viver\b", False),
    (
        "abuse",
        "pt",
        r"\b(?:ele|ela|meu (?:marido|namorado|pai|parceiro|ex|padrasto)|minha "
        r"(?:esposa|mulher|namorada|mãe)) me (?:bate|batia|agride|agrediu|estuprou|ameaça)\b",
        True,
    ),
    ("abuse", "pt", r"\bviolência doméstica\b", False),
    ("medical_emergency", "pt", r"\bdor no peito\b", True),
    ("medical_emergency", "pt", r"\bnão consigo respirar\b", False),
    ("medical_emergency", "pt", r"\b(?:ataque cardíaco|infarto|avc)\b", True),
    ("medical_emergency", "pt", r"\b(?:uma ambulância|remédios demais|comprimidos demais)\b", True),
    # ---------------------------------------------------------------- Italian
    (
        "self_harm",
        "it",
        r"\b(?:uccidermi|ammazzarmi|suicid(?:io|a|ario|aria|armi|arsi)|togliermi la vita|farmi del "
        r"male)\b",
        True,
    ),
    ("self_harm", "it", r"\bvoglio morire\b", True),
    ("self_harm", "it", r"\bmeglio senza di me\b", False),
    ("self_harm", "it", r"\bnon voglio (?:più )?vivere\b", False),
    (
        "abuse",
        "it",
        r"\b(?:lui|lei|mio (?:marito|fidanzato|padre|compagno|ex)|mia "
        r"(?:moglie|fidanzata|madre)) mi (?:picchia|picchiava|colpisce|violenta|minaccia)\b",
        True,
    ),
    ("abuse", "it", r"\bviolenza domestica\b", False),
    ("medical_emergency", "it", r"\bdolore al petto\b", True),
    ("medical_emergency", "it", r"\bnon riesco (?:più )?a respirare\b", False),
    ("medical_emergency", "it", r"\b(?:infarto|ictus|un'ambulanza)\b", True),
    # ---------------------------------------------------------------- Dutch
    ("self_harm", "nl", r"\b(?:zelfmoord\w*|suïcid\w*|suicidaal)\b", True),
    (
        "self_harm",
        "nl",
        r"\b(?:mezelf|mijzelf) (?:van kant (?:te )?maken|iets (?:aan )?"
        r"(?:te )?doen|doden|snijden|pijn doen)\b",
        True,
    ),
    ("self_harm", "nl", r"\bwil (?:dood|sterven)\b", True),
    ("self_harm", "nl", r"\bbeter af zonder (?:mij|me)\b", False),
    ("self_harm", "nl", r"\bniet meer (?:willen )?leven\b", False),
    (
        "abuse",
        "nl",
        r"\b(?:hij|zij|mijn (?:man|vriend|vader|partner|vrouw|vriendin|moeder|ex))"
        r" (?:slaat|sloeg|mishandelt|bedreigt|verkracht\w*) (?:me|mij)\b",
        True,
    ),
    ("abuse", "nl", r"\bhuiselijk geweld\b", False),
    ("medical_emergency", "nl", r"\bpijn (?:op|in) (?:de|mijn) borst\b", True),
    ("medical_emergency", "nl", r"\bkan (?:niet|geen) (?:meer )?(?:ademen|lucht krijgen)\b", False),
    ("medical_emergency", "nl", r"\b(?:hartaanval|beroerte|een ambulance)\b", True),
    # ---------------------------------------------------------------- Japanese
    (
        "self_harm",
        "ja",
        r"死にたい|自殺|消えたい|自傷|リストカット|リスカ|生きていたくない|"
        r"生きたくない|命を絶|首を吊",
        False,
    ),
    (
        "abuse",
        "ja",
        r"(?:夫|彼氏|父|母|旦那|親|彼|妻|パートナー)(?:に|が|から).{0,8}"
        r"(?:殴ら|殴る|叩か|蹴ら|暴力)|dv|家庭内暴力|虐待",
        False,
    ),
    (
        "medical_emergency",
        "ja",
        r"胸が(?:痛|苦し)|息ができない|呼吸ができない|心臓発作|脳卒中|"
        r"救急車|薬を(?:大量|たくさん)",
        False,
    ),
]


@dataclass(frozen=True)
class Pattern:
    category: Category
    language: str
    regex: re.Pattern[str]
    negatable: bool


PATTERNS: tuple[Pattern, ...] = tuple(
    Pattern(category, language, re.compile(pattern), negatable)
    for category, language, pattern, negatable in _RAW
)


def _negated(text: str, start: int) -> bool:
    """Whether a negation word stands among the last few words before ``start`` in its
    clause."""
    before = _CLAUSE_END.split(text[:start])[-1]
    window = " ".join(before.split()[-_WINDOW_WORDS:])
    return _NEGATION.search(window) is not None


def match(normalized: str) -> Pattern | None:
    """The first pattern with a hit in ``normalized`` text that is not negated."""
    for pattern in PATTERNS:
        for hit in pattern.regex.finditer(normalized):
            if not (pattern.negatable and _negated(normalized, hit.start())):
                return pattern
    return None

"""Plain-language explanations of the 14 PTC techniques, for reports.

Each technique has a short display name, a two-letter code (used as an inline tag in plain
terminal output), a one-sentence definition, an invented example sentence (written for unspin,
not taken from any corpus), a colour, and a *stance*: whether a span of that technique usually
attacks its target, glorifies it, or either (decided per span, see :func:`stance_of`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from unspin.techniques import TECHNIQUES

__all__ = ["EXPLANATIONS", "Explanation", "TARGETED_TECHNIQUES", "explain", "stance_of"]

Stance = Literal["attacked", "glorified", "mentioned"]


@dataclass(frozen=True, slots=True)
class Explanation:
    technique: str
    name: str
    code: str
    definition: str
    example: str
    color: str  # a hex colour, readable as a background behind black text


_ROWS: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "Appeal_to_Authority",
        "Appeal to authority",
        "AA",
        "Claims something is true only because an expert, leader or institution says so.",
        "Every serious economist agrees the new tariff will make us all richer.",
        "#8dd3c7",
    ),
    (
        "Appeal_to_fear-prejudice",
        "Appeal to fear / prejudice",
        "AF",
        "Builds support for an idea by stirring up fear of an alternative or of a group.",
        "If the border stays open, your children will not be safe in their own beds.",
        "#fb8072",
    ),
    (
        "Bandwagon,Reductio_ad_hitlerum",
        "Bandwagon / reductio ad Hitlerum",
        "BW",
        "Urges you to join in because 'everyone' does, or rejects an idea because a hated "
        "group holds it.",
        "Millions have already signed up - do not be the last family left behind.",
        "#bebada",
    ),
    (
        "Black-and-White_Fallacy",
        "Black-and-white fallacy",
        "BF",
        "Presents two options as the only possible ones, when more exist.",
        "Either you back the minister's plan or you want the factory to close.",
        "#b3de69",
    ),
    (
        "Causal_Oversimplification",
        "Causal oversimplification",
        "CO",
        "Blames one cause for a problem that has many.",
        "Prices went up for one reason only: the new mayor moved into city hall.",
        "#fdb462",
    ),
    (
        "Doubt",
        "Doubt",
        "DO",
        "Questions the credibility of someone or something without evidence.",
        "Can we really trust a report paid for by people with so much to hide?",
        "#80b1d3",
    ),
    (
        "Exaggeration,Minimisation",
        "Exaggeration / minimisation",
        "EM",
        "Makes something look much bigger or much smaller than it is.",
        "The so-called flood was a few puddles, yet they call it the storm of the century.",
        "#ffed6f",
    ),
    (
        "Flag-Waving",
        "Flag-waving",
        "FW",
        "Plays on patriotism or group pride to justify an idea or action.",
        "Any true son of this land will stand behind our soldiers without question.",
        "#ccebc5",
    ),
    (
        "Loaded_Language",
        "Loaded language",
        "LL",
        "Uses words with strong emotional weight to sway the reader.",
        "The reckless scheme will unleash a tidal wave of misery on decent people.",
        "#fccde5",
    ),
    (
        "Name_Calling,Labeling",
        "Name calling / labeling",
        "NC",
        "Attaches an insulting or admiring label to a person or group instead of arguing.",
        "The council's pet bureaucrats have done it again.",
        "#f4a6a6",
    ),
    (
        "Repetition",
        "Repetition",
        "RE",
        "Repeats the same message again and again until it sticks.",
        "They lied about the dam. They lied about the bridge. They lie about everything.",
        "#d9d9d9",
    ),
    (
        "Slogans",
        "Slogans",
        "SL",
        "A short, striking phrase that stands in for an argument.",
        "One city, one voice, one future!",
        "#bc80bd",
    ),
    (
        "Thought-terminating_Cliches",
        "Thought-terminating cliché",
        "TC",
        "A stock phrase that discourages further thought or discussion.",
        "It is what it is, and that is the end of the matter.",
        "#9ecae1",
    ),
    (
        "Whataboutism,Straw_Men,Red_Herring",
        "Whataboutism / straw man / red herring",
        "WH",
        "Deflects criticism: points at the opponent's failings, distorts their position, or "
        "changes the subject.",
        "You complain about the potholes, but what about the mess the last mayor left?",
        "#c7e9c0",
    ),
)

EXPLANATIONS: dict[str, Explanation] = {row[0]: Explanation(*row) for row in _ROWS}
assert tuple(EXPLANATIONS) == TECHNIQUES, "one explanation per technique, in TECHNIQUES order"

#: Techniques whose spans are aimed at someone; the report looks for a named entity for these.
TARGETED_TECHNIQUES: frozenset[str] = frozenset(
    {"Name_Calling,Labeling", "Appeal_to_fear-prejudice", "Flag-Waving", "Loaded_Language"}
)

_FIXED_STANCE: dict[str, Stance] = {
    "Name_Calling,Labeling": "attacked",
    "Appeal_to_fear-prejudice": "attacked",
    "Flag-Waving": "glorified",
}

# A tiny polarity lexicon for Loaded_Language (and for labels that praise rather than insult).
_POSITIVE = re.compile(
    r"\b(great|glorious|heroic|hero(es)?|brave|bravery|valiant|noble|proud|pride|victor(y|ies|ious)"
    r"|triumph\w*|honou?r\w*|martyr\w*|sacred|defenders?|liberat\w+|courage\w*|beloved|wise"
    r"|mighty|steadfast|patriot\w*|loyal\w*|resilien\w+)\b",
    re.IGNORECASE,
)
_NEGATIVE = re.compile(
    r"\b(terror\w*|takfiri\w*|barbar\w+|savage\w*|brutal\w*|evil|crimin\w+|crimes?|thugs?"
    r"|mercenar\w+|puppets?|traitors?|treacher\w+|murder\w*|butcher\w*|bloodthirsty|monsters?"
    r"|vile|cowards?|cowardly|lies|liars?|lying|aggress\w+|occup\w+|invad\w+|invaders?|extremis\w+"
    r"|fanatic\w*|corrupt\w*|gangs?|bandits?|regime|henchm[ae]n|lackeys?|stooges?|hostile|enem\w+"
    r"|sinister|shameless\w*|criminal|nazi\w*|fascis\w+|destroy\w*|destruct\w*|plot\w*)\b",
    re.IGNORECASE,
)


def explain(technique: str) -> Explanation:
    """The explanation of one of :data:`unspin.techniques.TECHNIQUES`."""
    return EXPLANATIONS[technique]


def stance_of(technique: str, span_text: str) -> Stance:
    """Whether a span of ``technique`` reading ``span_text`` attacks or glorifies its target.

    Name calling and appeals to fear attack; flag-waving glorifies; loaded language is decided
    by a small word list (negative words win) and is ``"mentioned"`` when neither list matches.
    """
    if (
        technique == "Name_Calling,Labeling"
        and _POSITIVE.search(span_text)
        and not (_NEGATIVE.search(span_text))
    ):
        return "glorified"
    if technique in _FIXED_STANCE:
        return _FIXED_STANCE[technique]
    if _NEGATIVE.search(span_text):
        return "attacked"
    if _POSITIVE.search(span_text):
        return "glorified"
    return "mentioned"

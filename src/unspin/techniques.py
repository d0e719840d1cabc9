"""The 14 techniques of the Propaganda Techniques Corpus (SemEval-2020 Task 11)."""

from __future__ import annotations

__all__ = ["TECHNIQUES", "TECHNIQUE_INDEX"]

TECHNIQUES: tuple[str, ...] = (
    "Appeal_to_Authority",
    "Appeal_to_fear-prejudice",
    "Bandwagon,Reductio_ad_hitlerum",
    "Black-and-White_Fallacy",
    "Causal_Oversimplification",
    "Doubt",
    "Exaggeration,Minimisation",
    "Flag-Waving",
    "Loaded_Language",
    "Name_Calling,Labeling",
    "Repetition",
    "Slogans",
    "Thought-terminating_Cliches",
    "Whataboutism,Straw_Men,Red_Herring",
)

TECHNIQUE_INDEX: dict[str, int] = {name: i for i, name in enumerate(TECHNIQUES)}

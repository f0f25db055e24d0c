"""The phrases that state an event in an announcement, and a fast way to find them.

``PHRASES`` lists, per cue kind, regular expressions over lower-cased text, each starting with a
literal word (the *key*). A cue is either explicit ("will delist", "wallet maintenance", "hard
fork") or loose ("removal of ... trading pairs", "maintenance", "listing"); a ``suspend`` cue is
only a verb, which the extractor keeps when deposits or withdrawals are what it stops; an
``upgrade_ref`` ("the upgrade") refers to the upgrade stated before it; a ``resume`` cue marks
where a window ends.

Scanning a text with one big alternation costs Python's regex engine every branch at every
position; here the expressions are tried only where a word starts with a key, which is ten
times faster on announcement-length texts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator


def _each(heads: str, tail: str = "") -> tuple[str, ...]:
    """One expression per head word, "_" standing for a space: ``_each("wallet trading_system", tail)``."""
    return tuple(head.replace("_", r"\s+") + tail for head in heads.split())


# (kind, explicit) -> expressions, each starting with a literal word (its key); a kind is an event
# type, "suspend" or "resume".
PHRASES: dict[tuple[str, bool], tuple[str, ...]] = {
    ("delisting", True): (r"delist(?:s|ed|ing|ment)?\b",),
    ("delisting", False): (
        r"remov(?:e|es|ed|ing|al)\b(?:\s+of)?[^.\n]{0,60}?"
        r"\b(?:trading\s+pairs?|pairs?|contracts?|markets?|from\s+(?:our|the)\s+(?:platform|exchange|eligible|list))\b",
        r"cease[sd]?\s+(?:all\s+)?trading\b",
        r"end(?:s|ing)?\s+(?:of\s+)?(?:trading|support)\s+(?:support\s+)?(?:for|of)\b",
        r"suspend(?:s|ed|ing)?\s+trading\s+(?:for|of|in)\b",
        r"no\s+longer\s+(?:be\s+)?(?:supported|listed|tradable|available\s+for\s+trading)\b",
        *_each("discontinu sunset", r"\w*[^.\n]{0,40}?\b(?:trading|pairs?|support)\b"),
    ),
    ("network_upgrade", True): (
        *_each("network mainnet protocol chain blockchain consensus", r"\s+upgrades?\b"),
        r"hard[\s-]?forks?\b",
    ),
    ("network_upgrade", False): (
        r"upgrade\s+of\s+the\b[^.\n]{0,40}?\b(?:network|mainnet|chain|blockchain|protocol)\b",
        *_each("network chain mainnet", r"\s+(?:migration|split)\b"),
        r"migration\s+to\b[^.\n]{0,40}?\b(?:layer[\s-]?2|l2|mainnet|network|chain)\b",
        r"fork\b",
    ),
    # "the upgrade": the network upgrade or system upgrade stated before it, if any.
    ("upgrade_ref", False): (r"upgrade\b",),
    ("maintenance", True): (
        *_each(
            "wallet system scheduled planned routine emergency temporary node platform server infrastructure "
            "database engine gateway exchange",
            r"\s+(?:maintenance|downtime|outage)\b",
        ),
        *_each("system platform server infrastructure database engine wallet trading_system", r"\s+upgrades?\b"),
        r"under\s+maintenance\b",
    ),
    ("maintenance", False): (r"maintenance\b(?<!margin\smaintenance)(?!\s+margin)", r"downtime\b", r"outage\b"),
    ("listing", True): (
        *_each("will to ready_to", r"\s+list\b"),
        *_each("will_be to_be been is_being are_being get gets", r"\s+listed\b"),
        r"new\s+(?:spot\s+|margin\s+|futures\s+|perpetual\s+)?(?:trading\s+)?(?:pairs?|listings?|tokens?|contracts?)\b",
        r"add(?:s|ed|ing)?\s+support\s+for\b",
        r"will\s+add\b[^.\n]{0,60}?\b(?:trading\s+pairs?|pairs?|markets?)\b",
        r"open(?:s|ed|ing)?\s+trading\s+(?:for|of|on)\b",
    ),
    ("listing", False): (
        r"listing\b",
        r"launch(?:es|ed|ing)?\b[^.\n]{0,60}?\b(?:trading|pairs?|perpetual|futures|contracts?|markets?)\b",
        r"launching\s+on\b",
        r"now\s+(?:available|live)\s+(?:for|to)\s+trad\w*",
        r"trading\s+(?:will\s+)?(?:begins?|starts?|opens?|goes\s+live)\b",
    ),
    ("suspend", True): (
        r"suspen(?:d|ds|ded|ding|sion)\b",
        r"halt(?:s|ed|ing)?\b",
        r"paus(?:e|es|ed|ing)\b",
        r"disabl(?:e|es|ed|ing)\b",
        r"unavailable\b",
        r"delay(?:s|ed)?\b",
        r"frozen\b",
        r"freez(?:e|es|ing)\b",
        r"clos(?:e|es|ed|ing)\b",
        r"stop(?:s|ped|ping)?\b",
        r"no\s+longer\s+(?:be\s+)?(?:credited|processed|accepted)\b",
    ),
    ("resume", True): (
        r"resum(?:e|es|ed|ing|ption)\b",
        r"re-?open(?:s|ed|ing)?\b",
        r"restor(?:e|es|ed|ing|ation)\b",
        r"re-?enabl(?:e|es|ed|ing)\b",
        r"back\s+online\b",
        r"complet(?:e|es|ed|ion)\b",
        r"finish(?:es|ed)?\b",
        r"conclud(?:e|es|ed)\b",
    ),
}
_BRANCHES = [(expression, kind) for kind, expressions in PHRASES.items() for expression in expressions]
_KEYS = sorted({re.match(r"[a-z]+", expression).group() for expression, _ in _BRANCHES})
_KEYS = [k for k in _KEYS if not any(k != o and k.startswith(o) for o in _KEYS)]  # "re" covers "remov"
# Per key, the alternation of the expressions it starts; a marker group names the one that matched.
_BY_KEY = {
    key: re.compile("|".join(f"{e}(?P<c{i}>)" for i, (e, _) in enumerate(_BRANCHES) if e.startswith(key)))
    for key in _KEYS
}


def _trie(words: list[str]) -> str:
    """An alternation matching exactly ``words``, factored by common prefixes ("re|resume" ->
    "re(?:sume)?"): Python's regex engine tries a plain alternation's every branch at every position."""
    heads: dict[str, list[str]] = {}
    for word in words:
        heads.setdefault(word[:1], []).append(word[1:])
    branches = []
    for head, tails in sorted(heads.items()):
        rest = [t for t in tails if t]
        inner = _trie(rest) if rest else ""
        if inner and (len(rest) > 1 or "" in tails):
            inner = f"(?:{inner})" + ("?" if "" in tails else "")
        branches.append(re.escape(head) + inner)
    return "|".join(branches)


# A key where a word starts (the text is searched with a space in front, so a first word counts).
_KEY_AT = re.compile(r"[^a-z0-9_](" + _trie(_KEYS) + ")")


def lowered(text: str) -> str:
    """``text`` in lower case with every character where it was (offsets stay valid)."""
    return text.replace("\u0130", "I").lower()  # İ is the one character whose lower case is two


def find_cues(low: str) -> Iterator[tuple[int, int, str, bool]]:
    """(start, end, kind, explicit) of every cue in lower-cased ``low``, in order, not overlapping."""
    end = 0
    for key in _KEY_AT.finditer(" " + low):
        at = key.start()  # in ``low``: one less than in the padded text
        if at >= end and (m := _BY_KEY[key.group(1)].match(low, at)):
            end = m.end()
            yield at, end, *_BRANCHES[int(m.lastgroup[1:])][1]

"""Times as announcements state them: every date-time and duration in a text, as UTC nanoseconds.

Venues write times in many ways: ``2025-11-17 08:55 (UTC)``, ``2025-09-01-13:00 (UTC)``,
``8:00 am UTC on Mar 18, 2026``, ``Apr 7, 2026, 8AM UTC``, ``14:00 UTC on 2 April 2026``,
``2026-03-21 07:00 to 09:00 (UTC+8)``, ISO 8601 with ``Z`` or an offset. A zone is an offset
(``UTC+8``, ``GMT-5``, ``+08:00``) or a common abbreviation (``ET``/``PT`` follow US daylight saving).
A time without a zone takes the next stated zone of its sentence ("from 07:00 to 09:00 (UTC+8)"),
else UTC, the zone crypto venues announce in. A bare clock ("between 10:00 and 12:00 UTC") takes
the date of the nearest dated mention in its sentence; a clock earlier than the mention before it
on the same date rolls over midnight. A date without a year, or an impossible date, is not a time.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

NS = 1_000_000_000
DAY = 86_400 * NS
MONTHS = {
    m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
ZONES: dict[str, timezone | ZoneInfo] = {
    "UTC": UTC,
    "GMT": UTC,
    "Z": UTC,
    "SGT": timezone(timedelta(hours=8)),
    "HKT": timezone(timedelta(hours=8)),
    "KST": timezone(timedelta(hours=9)),
    "JST": timezone(timedelta(hours=9)),
    "CET": timezone(timedelta(hours=1)),
    "CEST": timezone(timedelta(hours=2)),
    "EST": timezone(timedelta(hours=-5)),
    "EDT": timezone(timedelta(hours=-4)),
    "PST": timezone(timedelta(hours=-8)),
    "PDT": timezone(timedelta(hours=-7)),
    "ET": ZoneInfo("America/New_York"),
    "PT": ZoneInfo("America/Los_Angeles"),
}
_MONTH = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"  # noqa: E501
_AMPM = r"[ap]\.?m\b\.?"


def _date(p: str) -> str:
    return (
        rf"(?:(?P<{p}y>\d{{4}})[-/.](?P<{p}m>\d{{1,2}})[-/.](?P<{p}d>\d{{1,2}})"
        rf"|(?P<{p}mn>{_MONTH})\.?\s+(?P<{p}md>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<{p}my>\d{{4}})\b"
        rf"|(?P<{p}dd>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<{p}dm>{_MONTH})\.?,?\s+(?P<{p}dy>\d{{4}})\b)"
    )


def _clock(p: str) -> str:
    """A clock with minutes (``08:55``, ``9:00 am``) or an hour with am/pm (``8AM``)."""
    return (
        rf"(?P<{p}H>\d{{1,2}})(?::(?P<{p}M>\d{{2}})(?::(?P<{p}S>\d{{2}})(?:\.\d+)?)?\s*(?P<{p}ap>{_AMPM})?"
        rf"|\s*(?P<{p}ap2>{_AMPM}))"
    )


def _zone(p: str) -> str:
    return (
        rf"\(?\s*(?P<{p}tz>(?-i:UTC|GMT)(?:\s*[+\-\u2212]\s*\d{{1,2}}(?::?\d{{2}})?)?"
        rf"|(?-i:SGT|HKT|KST|JST|CEST|CET|EST|EDT|PST|PDT|ET|PT)\b)\s*\)?"
    )


_ISO_ZONE = r"(?P<{p}iz>Z\b|[+-]\d{{2}}:?\d{{2}}\b)"
# A: date first, optionally a clock and a zone; B: clock first, then the date; C: a bare clock.
_TIMES = re.compile(
    rf"(?P<A>{_date('a')}(?:(?:,?\s*(?:at\s+|@\s*)?|T|-)(?:{_clock('a')})(?:{_ISO_ZONE.format(p='a')})?)?"
    rf"(?:\s*{_zone('a')})?)"
    rf"|(?P<B>(?<![\d:.\-/])(?:{_clock('b')})\s*(?:{_zone('b')})?\s*(?:on\s+|,\s*)?(?:[a-z]+day,?\s+)?{_date('b')}"
    rf"(?:\s*{_zone('b2')})?)"
    rf"|(?P<C>(?<![\d:.\-/])(?:\d{{1,2}}:\d{{2}}(?!\d)(?:\s*{_AMPM})?|\d{{1,2}}\s*{_AMPM})(?:\s*{_zone('c')})?)",
    re.IGNORECASE,
)
# Where a number can start a time: a year before "-", "/" or "." (2026-03-12), or a day or an hour
# before ":" (08:55), am/pm (8AM) or a word (2 April 2026). The leading character class lets Python's
# regex engine skip quickly to digits.
_DIGITS = re.compile(r"\d(?<!\d\d)(?:\d{3}(?=[-/.]\d)|\d?(?!\d)(?=:\d|\s*[aApP]\.?[mM]\b|(?:st|nd|rd|th)?\s+[A-Za-z]))")
_MONTH_WORD = re.compile(rf"(?:{_MONTH})\b")
_BARE = re.compile(rf"(?P<cH>\d{{1,2}})(?::(?P<cM>\d{{2}}))?\s*(?P<cap>{_AMPM})?", re.IGNORECASE)
_OFFSET = re.compile(r"([+\-\u2212])\s*(\d{1,2})(?::?(\d{2}))?")
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_WORDS |= {"nine": 9, "ten": 10, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45}
_WORDS |= {"sixty": 60, "ninety": 90, "half an": 0.5, "half a": 0.5}
# A stated length: "will take about one hour", "approximately 1 hour", "up to 4 hours", "for 90 minutes".
DURATIONS = re.compile(
    r"\b(?:takes?|taking|lasts?|lasting|for|approximately|approx\.|about|around|roughly|up\s+to)\s+"
    r"(?:(?:about|approximately|approx\.|around|roughly|up\s+to|an\s+estimated)\s+)?"
    rf"(?P<n>\d+(?:\.\d+)?|half\s+an?|{'|'.join(sorted((w for w in _WORDS if ' ' not in w), key=len, reverse=True))})"
    r"\s*(?P<u>minutes?|mins?|hours?|hrs?|h)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Stated:
    """One stated time: where it is in the text, its instant (UTC ns), whether it had a clock."""

    pos: int
    end: int
    ns: int
    has_clock: bool


@dataclass
class _Mention:
    pos: int
    end: int
    date: tuple[int, int, int] | None
    clock: tuple[int, int, int] | None
    zone: timezone | ZoneInfo | None
    sentence: int
    source: int | None = None  # a bare clock: the mention whose date it takes


def _zone_of(spec: str | None) -> timezone | ZoneInfo | None:
    if not spec:
        return None
    spec = " ".join(spec.split()).upper()
    if spec[:3] in ("UTC", "GMT") and len(spec) > 3:
        spec = spec[3:]
    if offset := _OFFSET.fullmatch(spec.replace(" ", "")):
        sign = -1 if offset.group(1) in "-\u2212" else 1
        hours, minutes = int(offset.group(2)), int(offset.group(3) or 0)
        if hours > 14 or minutes >= 60:
            return None
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    return ZONES.get(spec)


def _hour(hour: str, ampm: str | None) -> int:
    h = int(hour)
    if ampm:
        pm = ampm.lower().startswith("p")
        h = h % 12 + (12 if pm else 0)
    return h


def _parts(m: re.Match, p: str) -> tuple[tuple[int, int, int] | None, tuple[int, int, int] | None]:
    """(year, month, day) and (hour, minute, second) of form ``p``'s groups; None where not stated."""
    g = m.group
    if g(f"{p}y"):
        date = (int(g(f"{p}y")), int(g(f"{p}m")), int(g(f"{p}d")))
    elif g(f"{p}mn"):
        date = (int(g(f"{p}my")), MONTHS[g(f"{p}mn")[:3].lower()], int(g(f"{p}md")))
    else:
        date = (int(g(f"{p}dy")), MONTHS[g(f"{p}dm")[:3].lower()], int(g(f"{p}dd")))
    clock = None
    if g(f"{p}H") is not None and (g(f"{p}M") is not None or g(f"{p}ap") or g(f"{p}ap2")):
        clock = (_hour(g(f"{p}H"), g(f"{p}ap") or g(f"{p}ap2")), int(g(f"{p}M") or 0), int(g(f"{p}S") or 0))
    return date, clock


def _mention(m: re.Match, sentence: int) -> _Mention:
    g = m.group
    if g("A"):
        date, clock = _parts(m, "a")
        zone = _zone_of(g("aiz") or g("atz"))
    elif g("B"):
        date, clock = _parts(m, "b")
        zone = _zone_of(g("btz") or g("b2tz"))
    else:
        bare = _BARE.match(g("C"))
        date, clock = None, (_hour(bare.group("cH"), bare.group("cap")), int(bare.group("cM") or 0), 0)
        zone = _zone_of(g("ctz"))
    return _Mention(m.start(), m.end(), date, clock, zone, sentence)


def _instant(date: tuple[int, int, int], clock: tuple[int, int, int] | None, zone) -> int | None:
    try:
        local = datetime(*date, *(clock or (0, 0, 0)), tzinfo=zone or UTC)
    except ValueError:  # 2025-13-45, 25:00: not a time
        return None
    return int(local.timestamp()) * NS


def _find(text: str, sentence_starts: list[int], sentences: set[int] | None) -> list[re.Match]:
    """``_TIMES`` matches starting in ``sentences`` (all if None), tried only where a number or a
    month's name starts: a time starts with one, and Python's regex engine is slow to try every
    branch at every position."""
    low = text.replace("\u0130", "I").lower()  # same offsets as ``text``
    if sentences is None:
        spans = [(0, len(text))]
    else:  # the wanted sentences, adjacent ones merged
        bounds, spans = [*sentence_starts, len(text)], []
        for s in sorted(i for i in sentences if 0 <= i < len(sentence_starts)):
            if spans and spans[-1][1] == bounds[s]:
                spans[-1] = (spans[-1][0], bounds[s + 1])
            else:
                spans.append((bounds[s], bounds[s + 1]))
    starts = []
    for lo, hi in spans:
        starts += [m.start() for m in _DIGITS.finditer(text, lo, hi)]
    for month in MONTHS:
        at = low.find(month)
        while at != -1:
            if (at == 0 or not low[at - 1].isalpha()) and _MONTH_WORD.match(low, at):
                starts.append(at)
            at = low.find(month, at + 1)
    found, end = [], 0
    for at in sorted(starts):
        if at < end or (sentences is not None and bisect_right(sentence_starts, at) - 1 not in sentences):
            continue
        if m := _TIMES.match(text, at):
            found.append(m)
            end = m.end()
    return found


def stated_times(text: str, sentence_starts: list[int], sentences: set[int] | None = None) -> list[Stated]:
    """Every time ``text`` states, in order (only in ``sentences``, by index, if given).
    ``sentence_starts`` (ascending offsets) bound the sentences within which a bare clock finds its
    date and a time without a zone finds its zone."""
    found = _find(text, sentence_starts, sentences)
    mentions = [_mention(m, bisect_right(sentence_starts, m.start()) - 1) for m in found]
    absorbed: set[int] = set()
    for bare in mentions:
        if bare.date is not None:
            continue
        dated = [j for j, o in enumerate(mentions) if o.sentence == bare.sentence and o.date is not None]
        if dated:
            j = min(dated, key=lambda j: abs(mentions[j].pos - bare.pos))
            bare.date, bare.source = mentions[j].date, j
            if mentions[j].clock is None:
                absorbed.add(j)
    instants: dict[int, int] = {}
    for i, m in enumerate(mentions):
        zone = m.zone
        if zone is None:  # the zone stated next in the sentence, else UTC
            later = (o.zone for o in mentions[i + 1 :] if o.sentence == m.sentence and o.zone is not None)
            zone = next(later, None)
        if m.date is not None and (ns := _instant(m.date, m.clock, zone)) is not None:
            instants[i] = ns
    out: list[Stated] = []
    last: tuple[int, int] | None = None  # (sentence, ns) of the last time kept
    for i, m in enumerate(mentions):
        if i not in instants or i in absorbed:
            continue
        ns = instants[i]
        if m.source is not None:  # a bare clock: keep a range in order across midnight
            j = m.source
            if mentions[j].clock is not None and j in instants:
                other, after = instants[j], m.pos > mentions[j].pos
            elif last is not None and last[0] == m.sentence:
                other, after = last[1], True
            else:
                other, after = ns, True
            if after and other - DAY < ns < other:
                ns += DAY  # "on 2026-04-01 from 23:00 to 01:00"
            elif not after and other < ns < other + DAY:
                ns -= DAY  # "from 23:00 to 01:00 UTC on 2026-04-02"
        out.append(Stated(m.pos, m.end, ns, m.clock is not None))
        last = (m.sentence, ns)
    return out


def duration_ns(match: re.Match) -> int:
    """The length a ``DURATIONS`` match states, in nanoseconds."""
    n, unit = match.group("n").lower(), match.group("u").lower()
    amount = _WORDS[" ".join(n.split())] if n[0].isalpha() else float(n)
    return int(amount * (3600 if unit.startswith("h") else 60) * NS)

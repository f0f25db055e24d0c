"""The offline extractor: the events an announcement states, read by rules from its title and text.

It is the embedded default when no language-model endpoint is configured, labelled
``offline_rules`` in the ``extractor`` column. Deterministic and fast; no network, no model.

How it reads a document (title first, then the body split into sentences):

- Cues are phrases that state an event type: "will delist", "removal of ... trading pairs", "will
  list", "new trading pair", "wallet maintenance", "system upgrade", "network upgrade", "hard fork".
  A suspension cue is a verb (suspend, pause, halt, disable, delay, close, unavailable) with what it
  stops next to it in its clause: deposits, withdrawals or both (funding, transfers, sends and
  receives); "not suspended" is no cue. "The upgrade" is the upgrade (network or system) stated
  before it. Resume cues (resume, reopen, restore, complete) end windows.
- Confidence combines the cues of a type as independent votes (noisy-or): the title states what an
  announcement is about, so a title cue weighs most; explicit phrases weigh more than loose ones;
  repeated body cues add less and less; an event whose own sentence states its time gains a little.
  The most confident event is the document's main event and gets ``event_index`` 0; the others
  follow by confidence, then by where they are first stated.
- A stated time (``stated_times``) belongs to the cue before it in its sentence (else the first after
  it); after "to", "until", "and" (in a range) or a resume word it ends a window, else starts one.
  An end belongs to a cue of its own clause ("suspended at X, and withdrawals remain available
  until Y": Y ends nothing). A maintenance, upgrade or suspension stated with several distinct start
  times gives one event per start ("the MANTRA upgrade at ..., the MultiversX upgrade at ...");
  a listing or delisting takes its first. A window without a stated end ends at a later resume time,
  else after a stated duration ("will take about one hour"). Maintenance, upgrades and suspensions
  that state no time take the window of the one that does ("to support the upgrade, deposits will
  be suspended from ..."); other events take a time stated next to their cue, else the title's date.
- Assets are tickers in the event's sentences: ``Ether (ETH)``, ``ETH/USDT``, ``ETHUSDT``, upper-case
  lists ("DEGO, DENT, TRU"); the network is a named chain: ``BNB Smart Chain (BEP20)``,
  ``Injective (INJ) network``, ``on the Solana network``. Listing and delisting events have no end.

A document with no cue yields one ``other`` event with a low confidence.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import polars as pl

from arbiter.platform.enrich.cues import find_cues, lowered
from arbiter.platform.enrich.events import BLOCKING, Event, events_frame
from arbiter.platform.enrich.names import network, tickers
from arbiter.platform.enrich.stated_times import DURATIONS, NS, Stated, duration_ns, stated_times
from arbiter.platform.sources.web.text import drop_leading_title

EXTRACTOR = "offline_rules"
RULES_VERSION = "rules-2"  # the ``prompt_version`` of this extractor: bump it when a rule changes
OTHER_CONFIDENCE = 0.3
# Weight of a cue by (in the title, explicit phrase); repeated cues of a type add half as much each time.
WEIGHTS = {(True, True): 0.7, (True, False): 0.55, (False, True): 0.3, (False, False): 0.15}
STATED_BONUS = 0.05  # an event whose own sentence states when it happens

_OBJECTS = re.compile(
    r"(?P<both>deposits?\s*(?:,|and|&|/|or)\s*withdrawals?|withdrawals?\s*(?:,|and|&|/|or)\s*deposits?"
    r"|funding(?!\s+(?:fee|rate))"
    r"|transfers?|sends\s+and\s+receives|sending\s+and\s+receiving)"
    r"|(?P<deposit>\bdeposit(?:s|ing)?\b|\breceives\b|\breceiving\b)"
    r"|(?P<withdrawal>\bwithdraw(?:als?|s|ing)?\b|\bsends\b|\bsending\b)",
    re.IGNORECASE,
)
_SUSPENSION_OF = {
    frozenset({"deposit"}): "deposit_suspension",
    frozenset({"withdrawal"}): "withdrawal_suspension",
    frozenset({"deposit", "withdrawal"}): "deposit_withdrawal_suspension",
}
# Where a clause ends: ";", ":", ", and", "but", "while", "whereas", "however". One leading character
# class lets Python's regex engine skip quickly to the few places worth trying.
_CLAUSE_BREAK = re.compile(
    r"[;:,bBwWhH](?:(?<=[;:])|(?<=,)\s+and\b|(?<!\w.)(?i:(?<=b)ut|(?<=w)hile|(?<=w)hereas|(?<=h)owever)\b)"
)
_NEGATED = re.compile(r"\b(?:not|never)\s+(?:be\s+|been\s+|being\s+)?(?:temporarily\s+)?$|n't\s+$", re.IGNORECASE)
# Where a sentence ends: a line break, or .!? before a space or (stuck to a word) a capital letter.
_SENTENCE_BREAK = re.compile(r"[\n.!?](?:(?<=\n)\n*|(?<=[.!?])\s+|(?<=[a-z0-9)\]][.!?])(?=[A-Z]))")
_RANGE_END = re.compile(
    r"(?:^|\W)(?:to|until|till|through|thru|by)\s*(?:approx\w*\.?|around|about|roughly)?\s*$", re.IGNORECASE
)
_RANGE_AND = re.compile(r"\W*(?:and|-|\u2013|\u2014)\s*(?:approx\w*\.?|around|about|roughly)?\s*$", re.IGNORECASE)
_END_WORDS = re.compile(
    r"\b(?:until|till|resum\w*|re-?open\w*|restor\w*|re-?enabl\w*|back\s+online|complet\w*|finish\w*|conclud\w*"
    r"|end(?:s|ed)?\s+(?:at|on|by))\b",
    re.IGNORECASE,
)


class _Cue(NamedTuple):
    pos: int
    type: str  # an event type, or "resume"
    explicit: bool
    sentence: int
    in_title: bool


@dataclass
class _Found:
    """One event while it is being assembled."""

    type: str
    cues: list[int]  # indices into the document's cues
    confidence: float
    start: int | None = None  # UTC ns
    end: int | None = None
    own_time: bool = False
    first: int = 0  # where it is first stated
    anchor: int | None = None  # the sentence that states its start
    sentences: set[int] = field(default_factory=set)


@dataclass
class _Doc:
    text: str  # title, newline, body
    title_end: int
    starts: list[int]  # sentence start offsets
    cues: list[_Cue]
    times: list[Stated]
    tickers: dict[int, list[str]] = field(default_factory=dict)  # by sentence, as read
    networks: dict[int, str | None] = field(default_factory=dict)

    def sentence(self, pos: int) -> int:
        return bisect_right(self.starts, pos) - 1

    def sentence_text(self, s: int) -> str:
        end = self.starts[s + 1] if s + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[s] : end]


def extract(doc_id: str, title: str | None, text: str, venue: str) -> list[Event]:
    """The events ``title`` and ``text`` state, most confident (the main event) first."""
    doc = _read(title, text)
    found = _events(doc)
    own = [_assets(doc, sorted(f.sentences), venue) for f in found]
    # An event whose sentences name no ticker concerns what the document's others name, else its title.
    fallback = next((a for a in own if a), None) or (_assets(doc, [0], venue) if doc.title_end else [])
    return [
        Event(
            doc_id=doc_id,
            event_index=index,
            venue=venue,
            assets=tuple(own[index] or fallback),
            network=_network(doc, sorted(f.sentences)) if f.type in BLOCKING else None,
            event_type=f.type,
            effective_start=_datetime(f.start),
            effective_end=_datetime(f.end),
            confidence=f.confidence,
            extractor=EXTRACTOR,
            prompt_version=RULES_VERSION,
        )
        for index, f in enumerate(found)
    ]


def extract_frame(documents: pl.DataFrame) -> pl.DataFrame:
    """``document_events`` for a ``documents`` frame (``doc_id``, ``source`` as the venue, ``title``,
    ``body``): every document's events, in document order.

    Raises ``ValueError`` naming the column for a missing column, and the document and column for
    a null where the ``documents`` contract requires a value.
    """
    missing = [c for c in ("doc_id", "source", "title", "body") if c not in documents.columns]
    if missing:
        raise ValueError(f"documents frame: missing column(s) {', '.join(missing)}")
    for column in ("doc_id", "source", "body"):
        if nulls := documents.filter(pl.col(column).is_null()).height:
            first = documents.filter(pl.col(column).is_null()).get_column("doc_id")[0]
            raise ValueError(f"documents frame: column {column!r} is null in {nulls} row(s), first doc_id {first!r}")
    rows = documents.select("doc_id", "source", "title", "body").iter_rows()
    return events_frame(e for doc_id, source, title, body in rows for e in extract(doc_id, title, body, source))


def _datetime(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns // NS, UTC)


# reading ---------------------------------------------------------------------------------------


def _read(title: str | None, body: str) -> _Doc:
    title = " ".join((title or "").split())
    body = drop_leading_title(title, body) if title else body
    text = f"{title}\n{body}" if title else body
    starts = [0] + [m.end() for m in _SENTENCE_BREAK.finditer(text)]
    doc = _Doc(text, len(title), starts, [], [])
    doc.cues = list(_cues(doc))
    # Times matter in the title, in sentences with a cue and next to them ("at 09:00. ... will be delisted").
    near = {0, *(s + d for s in {c.sentence for c in doc.cues} for d in (-1, 0, 1))}
    doc.times = stated_times(text, starts, near)
    return doc


def _cues(doc: _Doc) -> Iterator[_Cue]:
    upgrade = None  # the kind of the last upgrade stated: "the upgrade" refers to it
    for start, end, kind, explicit in find_cues(lowered(doc.text)):
        s = doc.sentence(start)
        if kind == "suspend" and (kind := _suspension(doc, start, end, s)) is None:
            continue
        if kind == "upgrade_ref" and (kind := upgrade) is None:
            continue
        if kind in ("network_upgrade", "maintenance"):
            upgrade = kind
        yield _Cue(start, kind, explicit, s, start < doc.title_end)


def _suspension(doc: _Doc, at: int, end: int, s: int) -> str | None:
    """The suspension a verb states, by what it stops in its clause (the nearest object before it,
    else the nearest after it), or None (nothing that moves funds, or negated)."""
    text, lo = doc.text, doc.starts[s]
    hi = doc.starts[s + 1] if s + 1 < len(doc.starts) else len(text)
    if _NEGATED.search(text, max(lo, at - 30), at):
        return None
    left = text[max(lo, at - 100) : at]
    left = left[max((b.end() for b in _CLAUSE_BREAK.finditer(left)), default=0) :]
    right = text[end : min(hi, end + 100)]
    right = right[: next((b.start() for b in _CLAUSE_BREAK.finditer(right)), len(right))]
    objects = list(_OBJECTS.finditer(left))
    nearest = objects[-1] if objects else next(_OBJECTS.finditer(right), None)
    if nearest is None:
        return None
    kinds = {"deposit", "withdrawal"} if nearest.lastgroup == "both" else {nearest.lastgroup}
    return _SUSPENSION_OF[frozenset(kinds)]


# assembling ------------------------------------------------------------------------------------


def _confidence(cues: list[_Cue]) -> float:
    """Independent votes: each cue removes part of the remaining doubt; repeats count half as much."""
    doubt, seen = 1.0, {True: 0, False: 0}
    for cue in sorted(cues, key=lambda c: (not c.in_title, not c.explicit)):
        doubt *= 1 - WEIGHTS[cue.in_title, cue.explicit] * 0.5 ** seen[cue.in_title]
        seen[cue.in_title] += 1
    return 1 - doubt


def _is_end(segment: str, clause: str, after_time: bool) -> bool:
    """Whether a time ends a window, by the words before it: ``clause`` (its own clause) ends with
    "to", "until", "by", or says resume, reopen, complete; or ``segment`` (since the time before
    it) is only "and" / "-" ("between X and Y", "X - Y")."""
    ends_range = _RANGE_END.search(clause, max(0, len(clause) - 40))  # only the words just before the time
    return bool(ends_range or _END_WORDS.search(clause) or (after_time and _RANGE_AND.match(segment)))


def _attribute(doc: _Doc) -> tuple[dict[int, list[Stated]], dict[int, list[Stated]], list[Stated], list[Stated]]:
    """Which cue each stated time belongs to: (starts by cue, ends by cue, ends of a resume cue, and
    starts in sentences without an event cue)."""
    starts: dict[int, list[Stated]] = {}
    ends: dict[int, list[Stated]] = {}
    resumed: list[Stated] = []
    free: list[Stated] = []
    by_sentence: dict[int, list[int]] = {}
    for i, cue in enumerate(doc.cues):
        by_sentence.setdefault(cue.sentence, []).append(i)
    last_sentence, last_time, last_owner = -1, None, None  # the previous time and the cue its start went to
    for t in doc.times:
        s = doc.sentence(t.pos)
        if s != last_sentence:
            last_time, last_owner = None, None
        segment = doc.text[last_time.end if last_time else doc.starts[s] : t.pos]
        # The time's clause runs back to the last clause break: in "suspended at X, and withdrawals
        # remain available until Y", Y does not end the suspension.
        clause_at = max((b.end() for b in _CLAUSE_BREAK.finditer(segment)), default=0)
        clause_start = t.pos - len(segment) + clause_at
        here = by_sentence.get(s, [])
        before = [i for i in here if doc.cues[i].pos < t.pos]
        after = [i for i in here if doc.cues[i].pos > t.pos]
        is_end = _is_end(segment, segment[clause_at:], last_time is not None)
        last_sentence, last_time = s, t
        if is_end:
            if not t.has_clock:  # a date alone ends no window
                continue
            if clause_at:
                owner = next((i for i in reversed(before) if doc.cues[i].pos >= clause_start), None)
            else:
                owner = last_owner if last_owner is not None else (before or after or [None])[-1 if before else 0]
            if owner is not None:
                (resumed if doc.cues[owner].type == "resume" else ends.setdefault(owner, [])).append(t)
            continue
        events_before = [i for i in before if doc.cues[i].type != "resume"]
        events_after = [i for i in after if doc.cues[i].type != "resume"]
        last_owner = events_before[-1] if events_before else (events_after[0] if events_after else None)
        (free if last_owner is None else starts.setdefault(last_owner, [])).append(t)
    return starts, ends, resumed, free


def _events(doc: _Doc) -> list[_Found]:
    """The document's events, main event first."""
    starts, ends, resumed, free = _attribute(doc)
    found: list[_Found] = []
    for kind in dict.fromkeys(c.type for c in doc.cues if c.type != "resume"):
        indices = [i for i, c in enumerate(doc.cues) if c.type == kind]
        confidence = _confidence([doc.cues[i] for i in indices])
        timed = [(t, i) for i in indices for t in starts.get(i, []) if t.has_clock]
        timed = [(t, i) for t, i in timed if not doc.cues[i].in_title] or timed  # the body's times over the title's
        by_start: dict[int, list[int]] = {}
        anchors: dict[int, int] = {}
        for t, i in timed:
            by_start.setdefault(t.ns, []).append(i)
            anchors.setdefault(t.ns, doc.sentence(t.pos))
        if kind in BLOCKING and len(by_start) > 1:  # one window each: "the OM upgrade at ..., the EGLD upgrade at ..."
            group = [_Found(kind, cues, confidence, start=ns, own_time=True) for ns, cues in by_start.items()]
        else:
            start = next(iter(by_start), None)
            group = [_Found(kind, indices, confidence, start=start, own_time=start is not None)]
        for f in group:
            f.anchor = anchors.get(f.start)
            f.first = min(doc.cues[i].pos for i in f.cues)
            f.sentences = {doc.cues[i].sentence for i in f.cues}
            stated_ends = [t.ns for i in f.cues for t in ends.get(i, []) if f.start is None or t.ns > f.start]
            f.end = min(stated_ends, default=None)
            if f.type in BLOCKING and f.end is None:
                _end_from_text(doc, f, resumed)
        found += group
    _borrow_windows(doc, found, starts, free)
    for f in found:
        if f.type in ("listing", "delisting"):
            f.end = None
        bonus = STATED_BONUS if f.own_time else 0.0
        f.confidence = round(min(0.99, 1 - (1 - f.confidence) * (1 - bonus)), 3)
    if not found:
        found.append(_Found("other", [], OTHER_CONFIDENCE, sentences={0} if doc.title_end else set()))
    return sorted(found, key=lambda f: (-f.confidence, f.first))


def _end_from_text(doc: _Doc, f: _Found, resumed: list[Stated]) -> None:
    """A blocking event's end: a later resume time, else its start plus a duration stated in the
    sentence of its start or the two after it."""
    after = [t.ns for t in resumed if t.pos > f.first and (f.start is None or t.ns > f.start)]
    if after:
        f.end = after[0]
        return
    if f.start is None or f.anchor is None:
        return
    hi = f.anchor + 3
    span = doc.text[doc.starts[f.anchor] : doc.starts[hi] if hi < len(doc.starts) else len(doc.text)]
    low = span.lower()
    if ("hour" in low or "min" in low or "hr" in low) and (m := DURATIONS.search(span)):
        f.end = f.start + duration_ns(m)


def _borrow_windows(doc: _Doc, found: list[_Found], starts: dict[int, list[Stated]], free: list[Stated]) -> None:
    """Windows for events whose cues state no time with a clock. Maintenance, upgrades and
    suspensions take the most confident one's window that has a start ("to support the upgrade,
    deposits will be suspended from ..."), else a date their body states ("deposits will be disabled
    on 2 April 2026"). Listings and delistings take a time stated next to their cue, else a date
    stated with it, else the title's date."""
    timed = sorted((f for f in found if f.type in BLOCKING and f.start is not None), key=lambda f: -f.confidence)
    for f in found:
        if f.start is not None or f.end is not None:
            continue
        dated = sorted((t for i in f.cues for t in starts.get(i, [])), key=lambda t: (t.pos < doc.title_end, t.pos))
        if f.type in BLOCKING:
            if timed:
                f.start, f.end = timed[0].start, timed[0].end
            elif dated and dated[0].pos >= doc.title_end:  # "deposits will be disabled on 2 April 2026"
                f.start = dated[0].ns
            continue
        near = [t for t in free if t.has_clock and min(abs(doc.sentence(t.pos) - s) for s in f.sentences) <= 1]
        title = [t for t in doc.times if t.pos < doc.title_end]
        if near:
            f.start = near[0].ns
            f.sentences.add(doc.sentence(near[0].pos))
        elif dated or title:
            f.start = (dated or title)[0].ns


# assets and networks ---------------------------------------------------------------------------


def _assets(doc: _Doc, sentences: list[int], venue: str) -> list[str]:
    """Tickers stated in ``sentences``, in order of first mention."""
    found: dict[str, None] = {}
    for s in sentences:
        if s not in doc.tickers:
            doc.tickers[s] = tickers(doc.sentence_text(s), venue)
        found.update(dict.fromkeys(doc.tickers[s]))
    return list(found)


def _network(doc: _Doc, sentences: list[int]) -> str | None:
    """The first chain named in ``sentences``, else in the title."""
    for s in [*sentences, *([0] if doc.title_end and 0 not in sentences else [])]:
        if s not in doc.networks:
            doc.networks[s] = network(doc.sentence_text(s))
        if doc.networks[s]:
            return doc.networks[s]
    return None

"""Labelled product pairs from two marketplaces: the listings they describe, and which pairs match.

Product-matching datasets (ProMap and the classic Walmart-Amazon, Abt-Buy, Amazon-Google) come as
one CSV row per labelled pair: the first product's columns suffixed ``1``, the second's ``2``, and
``match`` (1 or 0). ``load_pairs`` turns such a file into what clustering reads and is scored on:

- ``listings``: each product once, in the contract's LISTINGS columns (``venue`` is the side's
  marketplace; ``title`` from ``name``; ``description`` from ``short_description`` with HTML
  entities and tags removed; ``brand`` from the ``Brand`` or ``Manufacturer`` entry of a
  ``specification`` JSON list when the file has one; ``price``);
- ``truth``: one row per labelled pair (``venue_a``, ``listing_id_a``, ``venue_b``,
  ``listing_id_b``, ``match``, plus ``category`` and ``match_type`` when the file has them).

Some files give a product a new id in every row it appears in (the Walmart-Amazon names file):
``listing_key="title"`` then identifies a product by its marketplace and title, and its
``listing_id`` is the first id it appears under. The files carry no listing time, so every
listing's ``ts`` is ``listed_at``.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from arbiter.platform import schema

TRUTH_SCHEMA = {
    "venue_a": pl.String,
    "listing_id_a": pl.String,
    "venue_b": pl.String,
    "listing_id_b": pl.String,
    "match": pl.Boolean,
    "category": pl.String,
    "match_type": pl.String,
}
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")
_BRAND_KEYS = ("brand", "manufacturer")


class PairFileError(ValueError):
    """A labelled-pair file lacks a column it needs or holds a value it cannot read."""


@dataclass(frozen=True)
class LabelledPairs:
    listings: pl.DataFrame  # the contract's LISTINGS
    truth: pl.DataFrame  # TRUTH_SCHEMA


def clean_text(text: str | None) -> str | None:
    """Marketplace text as plain words: HTML entities decoded (twice: files often escape twice),
    tags removed, whitespace collapsed; None for empty text."""
    if text is None:
        return None
    plain = _SPACE.sub(" ", _TAG.sub(" ", html.unescape(html.unescape(text)))).strip()
    return plain or None


def brand_of(specification: str | None) -> str | None:
    """The ``Brand`` (else ``Manufacturer``) value of a ``[{"key": ..., "value": ...}]`` JSON list."""
    try:
        entries = json.loads(specification) if specification else []
    except json.JSONDecodeError:
        return None
    found = {str(e.get("key", "")).strip().lower(): e.get("value") for e in entries if isinstance(e, dict)}
    for key in _BRAND_KEYS:
        if isinstance(found.get(key), str) and found[key].strip():
            return found[key].strip()
    return None


def load_pairs(
    path: str | Path,
    venues: tuple[str, str],
    *,
    listing_key: Literal["id", "title"] = "id",
    listed_at: datetime = datetime(1970, 1, 1, tzinfo=UTC),
) -> LabelledPairs:
    """The listings and labelled pairs of a pair file whose sides are the marketplaces ``venues``.

    Raises ``PairFileError`` naming the file, row and column for a missing column, an empty id or
    name, or a ``match`` that is not 0 or 1.
    """
    path = Path(path)
    frame = pl.read_csv(path, infer_schema=False)
    for column in ("id1", "name1", "id2", "name2", "match"):
        if column not in frame.columns:
            raise PairFileError(f"{path.name}: no column {column!r}")
    listings: dict[tuple[str, str], dict] = {}
    ids: dict[tuple[str, str], str] = {}
    truth = []
    for number, row in enumerate(frame.iter_rows(named=True), start=2):  # line 1 is the header
        keys = []
        for side, venue in zip(("1", "2"), venues, strict=True):
            listing_id, title = (row.get(f"id{side}") or "").strip(), clean_text(row.get(f"name{side}"))
            if not listing_id or not title:
                column = f"id{side}" if not listing_id else f"name{side}"
                raise PairFileError(f"{path.name}: line {number}, column {column!r}: empty")
            identity = (venue, listing_id if listing_key == "id" else title)
            listing_id = ids.setdefault(identity, listing_id)
            keys.append(listing_id)
            listings.setdefault(identity, _listing(row, side, venue, listing_id, title, listed_at, path, number))
        if row["match"] not in ("0", "1"):
            raise PairFileError(f"{path.name}: line {number}, column 'match': {row['match']!r} is not 0 or 1")
        truth.append(
            {
                "venue_a": venues[0],
                "listing_id_a": keys[0],
                "venue_b": venues[1],
                "listing_id_b": keys[1],
                "match": row["match"] == "1",
                "category": row.get("category"),
                "match_type": row.get("match_type"),
            }
        )
    frame_schema = pl.from_arrow(schema.LISTINGS.empty_table()).schema
    listings_frame = pl.DataFrame(list(listings.values()), schema=frame_schema, orient="row")
    return LabelledPairs(listings_frame, pl.DataFrame(truth, schema=TRUTH_SCHEMA, orient="row"))


def _listing(
    row: dict, side: str, venue: str, listing_id: str, title: str, listed_at: datetime, path: Path, number: int
) -> dict:
    price_text = (row.get(f"price{side}") or "").strip()
    try:
        price = float(price_text) if price_text else None
    except ValueError as exc:
        problem = f"{price_text!r} is not a number"
        raise PairFileError(f"{path.name}: line {number}, column 'price{side}': {problem}") from exc
    return {
        "ts": listed_at,
        "venue": venue,
        "listing_id": listing_id,
        "title": title,
        "description": clean_text(row.get(f"short_description{side}")),
        "brand": brand_of(row.get(f"specification{side}")),
        "price": price,
        "currency": "USD" if price is not None else None,
        "image_uri": None,
    }

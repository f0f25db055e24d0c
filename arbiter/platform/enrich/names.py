"""Assets and networks as announcements name them, read from one sentence at a time.

Tickers: a parenthesised code after a name (``Ether (ETH)``, ``Tether (USDT)``), the base of a pair
(``ETH/USDT``, ``IP-USD``, ``ETHUSDT``; ``GMTUSD`` in a sentence about contracts) and upper-case
words (``Will Delist DEGO, DENT, TRU``), except names written in capitals (``MANTRA (OM)``), units
of amounts (``Listing Fee: 0 BNB``), token standards (``BEP20``), quote currencies standing alone
and common abbreviations (``UTC``, ``API``, ``ADL``). Networks: a chain as the text names it,
``BNB Smart Chain (BEP20)``, ``Injective (INJ)`` (before "network"), ``Ethereum Network (ETH)``,
``Solana`` (in "on the Solana network").
"""

from __future__ import annotations

import re

_QUOTES = r"USDT|USDC|FDUSD|USD|EUR|GBP|TRY|BRL|JPY|AUD|BTC|ETH|BNB|PERP"
QUOTE_ONLY = frozenset(_QUOTES.split("|")) - {"BTC", "ETH", "BNB"}
# Upper-case words that name no asset: zones, abbreviations, words written in capitals.
NOT_ASSETS = frozenset(
    {
        *("UTC", "GMT", "SGT", "HKT", "KST", "JST", "CET", "CEST", "EST", "EDT", "PST", "PDT", "ET", "PT", "AM", "PM"),
        *("API", "FAQ", "KYC", "VIP", "NFT", "ADL", "IOCO", "APY", "APR", "LTV", "OTC", "P2P", "ID", "APP", "DEX"),
        *("CEX", "ETF", "AI", "TBA", "TBD", "L2", "CM", "TR", "US", "UK", "EU", "EEA"),
        *("NOT", "NEW", "AND", "THE", "FOR", "ALL", "NOTE", "NOTICE", "IMPORTANT", "UPDATE"),
        # Venues named in capitals ("OKX will list ..."): an announcement's venue, not its asset.
        *("OKX", "BINANCE", "BYBIT", "KUCOIN", "BITGET", "HTX", "MEXC", "KRAKEN", "COINBASE", "BITFINEX"),
    }
)
_TOKEN = re.compile(r"[A-Z][A-Z0-9]+|[0-9]+[A-Z][A-Z0-9]*")  # capitals and digits: a ticker, a pair, a standard
_PAIR_TAIL = re.compile(rf"\s?[/-]\s?(?:{_QUOTES})(?![\w/])")  # ETH/USDT, IP-USD
_GLUED = ("USDT", "USDC", "BUSD", "FDUSD")  # ETHUSDT
_CONTRACTS = re.compile(r"contract|perpetual|futures|delivery|inverse|coin-m", re.IGNORECASE)  # where GMTUSD is a pair
_STANDARD = re.compile(r"(?:BEP|TRC|ERC|SPL|BRC|ARC|KRC|HRC|OMNI)-?\d*")

_NAME = r"[A-Z][\w.\-]*(?:\s+(?:[A-Z][\w.\-]*|\d+)){0,3}"
# (pattern, lower-case words one of which the text must contain): the cheap test spares a slow scan.
_NETWORKS = (
    # BNB Smart Chain (BEP20), Tron (TRC20)
    (
        re.compile(rf"({_NAME})\s*\(((?:BEP|TRC|ERC|SPL|BRC|ARC|KRC|HRC)-?\d*)\)"),
        ("(bep", "(trc", "(erc", "(spl", "(brc", "(arc", "(krc", "(hrc"),
    ),
    # the Injective (INJ) network
    (
        re.compile(rf"({_NAME})\s*\(([A-Z0-9]{{2,10}})\)\s+(?:[Nn]etwork|[Mm]ainnet|[Cc]hain)\b"),
        (") network", ") mainnet", ") chain"),
    ),
    # Ethereum Network (ETH), The Open Network (TON)
    (re.compile(rf"({_NAME}\s+[Nn]etwork)\s*\(([A-Z0-9]{{2,10}})\)"), ("network",)),
    # on the Solana network
    (
        re.compile(
            rf"\b(?:[Oo]n|[Ff]or|[Oo]f)\s+(?:the\s+|our\s+)?({_NAME})\s+(?:[Nn]etwork|[Mm]ainnet|[Bb]lockchain)\b"
        ),
        ("network", "mainnet", "blockchain"),
    ),
    # for Bitcoin (BTC)
    (re.compile(rf"\b(?:[Oo]n|[Ff]or|[Oo]f)\s+(?:the\s+)?({_NAME})\s*\(([A-Z0-9]{{2,10}})\)"), ("(",)),
    # the Avalanche C-Chain network upgrade
    (re.compile(rf"({_NAME})\s+(?:[Nn]etwork|[Mm]ainnet)\s+[Uu]pgrade"), ("network upgrade", "mainnet upgrade")),
    # wallet maintenance for Ethereum
    (
        re.compile(rf"(?i:maintenance|upgrade|hard\s+fork)\s+(?:for|of|on)\s+(?:the\s+)?({_NAME})"),
        ("maintenance", "upgrade", "fork"),
    ),
)
_CODE = re.compile(r"\(\s*(?!UTC|GMT)[A-Z0-9-]{2,10}\s*\)")
_ANCHOR = re.compile(r"\(|[Nn]etwork|[Mm]ainnet|[Bb]lockchain|[Uu]pgrade|[Mm]aintenance|[Ff]ork")
_NOT_NETWORK = frozenset({"Entire", "Platform", "All", "Multiple", "Several", "Futures", "Spot", "Margin", "Options"})
_LEADING_WORDS = frozenset(
    {"The", "Will", "Support", "Supports", "Supporting", "Upcoming", "Scheduled", "Perform", "Performs", "Temporary"}
)


def tickers(sentence: str, venue: str) -> list[str]:
    """The tickers ``sentence`` names, in order of first mention, without the venue's own name."""
    found: dict[str, None] = {}
    own, contracts, size = venue.upper(), None, len(sentence)
    for m in _TOKEN.finditer(sentence):
        token, at, end = m.group(), m.start(), m.end()
        before = sentence[at - 1] if at else " "
        after = sentence[end] if end < size else " "
        if before.isalnum() or before in "_-" or after.isalnum() or after == "_":
            continue  # inside a longer word
        if after in "/- " and before != "/" and _PAIR_TAIL.match(sentence, end):
            found.setdefault(token)  # the base of ETH/USDT
            continue
        if after != "-" and token[-1] in "TCD":  # ETHUSDT; GMTUSD where the sentence is about contracts
            quote = next((q for q in _GLUED if token.endswith(q) and len(token) >= len(q) + 2), None)
            if quote is None and token.endswith("USD") and len(token) >= 5:
                contracts = bool(_CONTRACTS.search(sentence)) if contracts is None else contracts
                quote = "USD" if contracts else None
            if quote:
                found.setdefault(token[: -len(quote)])
                continue
        if token in NOT_ASSETS or token == own or _STANDARD.fullmatch(token):
            continue
        if (
            (before == "(" and after == ")")
            or (  # "Tether (USDT)" names an asset: quote currencies allowed
                token[0].isalpha()
                and len(token) <= 10
                and before not in "/(."
                and after not in "/)-"
                and token not in QUOTE_ONLY
                and not (before.isspace() and at >= 2 and sentence[at - 2].isdigit())  # "Listing Fee: 0 BNB"
                and not sentence[end : end + 3].lstrip().startswith("(")  # "MANTRA (OM)": a name
            )
        ):
            found.setdefault(token)
    return list(found)


def network(sentence: str) -> str | None:
    """The first chain ``sentence`` names, as written (leading title words such as "Will Support" dropped).

    The patterns are tried on the stretch of text around each "(" or chain word only: scanning a
    long sentence for a capitalised name at every capital letter is slow.
    """
    windows = []
    for anchor in _ANCHOR.finditer(sentence):
        if anchor.group() == "(" and not _CODE.match(sentence, anchor.start()):
            continue  # "(2025-11-17)", "(if applicable)": no chain's code
        lo = max(0, anchor.start() - 70)
        lo = sentence.find(" ", lo) + 1 if lo else 0  # from a word's start
        windows.append(sentence[lo : anchor.end() + 60])
    lowered = [w.lower() for w in windows]
    for pattern, words in _NETWORKS:
        for window, low in zip(windows, lowered, strict=True):
            if not any(w in low for w in words):
                continue
            for m in pattern.finditer(window):
                words = m.group(1).split()
                while len(words) > 1 and words[0] in _LEADING_WORDS:
                    words.pop(0)
                if not _NOT_NETWORK.intersection(words):
                    return f"{' '.join(words)} ({m.group(2)})" if pattern.groups > 1 else " ".join(words)
    return None

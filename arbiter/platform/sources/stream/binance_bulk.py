"""Binance captures in the ``ns_lines`` format, a column at a time.

A busy Binance capture is mostly ``bookTicker`` and ``trade`` lines, which need no state: they are
decoded with Polars string kernels over the whole file, no Python per line. ``depthUpdate`` lines
need the book's sequence rules: their levels (about 80 per message on the USD-M 0 ms stream) are
parsed for the whole file at once onto a price grid, their update ids are checked against each
other in one pass, and each run of diffs that follow one another is applied by one compiled loop
(``grid_book``). Snapshots, the first diff after one, and whatever breaks a run (a gap, a crossed
book) go one by one through ``BinanceHandler`` (the code the live client runs), which decides.

Decoding leans on Binance writing every message of a kind with the same keys in the same order:
the first line of a kind fixes the layout (where each key and value falls when the line is split
at its double quotes), and every line is checked against it. A line laid out otherwise, whose
fields do not parse, with an unknown symbol, or that breaks the contract (crossed, not positive)
goes to the handler instead, which quarantines it with the reason and field or reads it its own
way. When a depth line is laid out unlike Binance's, or several depth symbols share symbol-less
REST snapshots, every depth line and snapshot goes to the handler. A test holds both paths equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import msgspec
import numpy as np
import polars as pl

from arbiter.platform.normalise import UnknownSymbol, canonical_symbol
from arbiter.platform.sources.base import Parsed, RawSnapshot
from arbiter.platform.sources.stream.binance import BinanceHandler, Diff, same_market
from arbiter.platform.sources.stream.captures import ns_lines_frame
from arbiter.platform.sources.stream.grid_book import GridBook, GridDiffs
from arbiter.platform.sources.stream.handler import BOOK_TICKER, BOOK_UNCHANGED, WS_BOOK

MS = 1_000_000
UTC_NS = pl.Datetime("ns", "UTC")
_decode = msgspec.json.Decoder().decode

# Line kinds, told by the first bytes of each message (spot's bookTicker has no "e" field).
OTHER, BOOK_TICKER_LINE, TRADE, AGG_TRADE, DEPTH, SNAPSHOT = range(6)
_HEAD = 96


def _with_kinds(lines: pl.DataFrame) -> pl.DataFrame:
    """``lines`` plus ``kind``, told by the first bytes of each message (spot's bookTicker has no
    ``e`` field). The head is cut once: five searches in one short column cost half of five in
    the whole messages."""
    lines = lines.with_columns(_head=pl.col("msg").str.head(_HEAD))
    head = pl.col("_head")

    def has(text: str) -> pl.Expr:
        return head.str.contains(text, literal=True)

    kind = (
        pl.when(has('"e":"depthUpdate"'))
        .then(DEPTH)
        .when(has('"e":"trade"'))
        .then(TRADE)
        .when(has('"e":"aggTrade"'))
        .then(AGG_TRADE)
        .when(has('@bookTicker"') | has('"e":"bookTicker"'))
        .then(BOOK_TICKER_LINE)
        .when(head.str.starts_with('{"lastUpdateId":'))
        .then(SNAPSHOT)
        .otherwise(OTHER)
        .cast(pl.Int8)
    )
    return lines.with_columns(kind=kind).drop("_head")


def parse(snapshot: RawSnapshot, partition: str, data: bytes, venue: str, market: str) -> Parsed | None:
    """The capture's ``Parsed``, or None when it cannot be read as whole ``<ns> <json>`` lines
    (the record-by-record replay then reads it and quarantines the odd lines)."""
    lines = ns_lines_frame(data)
    if lines is None or not data.isascii():  # Binance sends ASCII; anything else takes the replay
        return None
    handler = BinanceHandler(
        source=snapshot.source,
        partition=partition,
        market=market,
        venue=venue,
        snapshot_symbol=snapshot.meta.get("symbol"),
    )
    lines = _with_kinds(lines)
    stateless = pl.col("kind").is_in([BOOK_TICKER_LINE, TRADE, AGG_TRADE])
    # bookTicker and trade lines need no state: their Polars decoding runs on a second thread
    # (Polars releases the GIL) while this one replays the depth lines through the handler.
    with ThreadPoolExecutor(1) as pool:
        decoded = pool.submit(_stateless, lines, venue, market)
        book_quotes = _replay_rest(lines.filter(~stateless), handler)
        quotes, trades = decoded.result()
    handled = pl.concat([quotes.get_column("line"), trades.get_column("line")])
    handler.records += handled.len()
    # What the column decoders left (another layout, a bad field, a crossed quote) gets the
    # handler's exact treatment; these lines need no state, so their order here does not matter.
    for recv, msg in (
        lines.filter(stateless & ~pl.col("line").is_in(handled.implode())).select("recv", "msg").iter_rows()
    ):
        handler.on_message(recv, msg.encode())
    handler.close()
    return handler.parsed(extra={"quotes": [quotes.drop("line"), *book_quotes], "trades": [trades.drop("line")]})


def _stateless(lines: pl.DataFrame, venue: str, market: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``book_ticker`` quotes and trades (each with its ``line``) of the lines that decode cleanly
    (each kind is picked from all the lines at once: one copy of its text, not two)."""
    quotes = _book_tickers(lines.filter(pl.col("kind") == BOOK_TICKER_LINE), venue, market)
    trades = pl.concat(
        [
            _trades(lines.filter(pl.col("kind") == TRADE), venue, market, aggregate=False),
            _trades(lines.filter(pl.col("kind") == AGG_TRADE), venue, market, aggregate=True),
        ]
    )
    return quotes, trades


def _flat(lines: pl.DataFrame, keys: Mapping[str, str], text: str = "msg") -> pl.DataFrame:
    """``line``, ``recv`` and one text column per wanted key (``keys``: JSON key -> column) for the
    lines laid out exactly like the first one; lines laid out otherwise are left out.

    A flat JSON object split at its double quotes puts each key at a fixed token, its value either
    in the token after the next (a quoted value) or inside the next one (``:123,``). The first
    line gives those positions; a line fits when it has the wanted keys at the same tokens (what
    other keys say does not change the values read), its last token closes the object as the
    first line's does (``:123}}``: no more tokens, none fewer) and it has no backslash (an escaped
    quote would shift the tokens). The split itself is Polars' CSV
    reader with ``"`` as the separator: it reads only the tokens asked for, on all cores, and is
    about 1.6x faster than ``str.split_exact``.
    """
    empty = lines.head(0).select("line", "recv", *(pl.lit(None, pl.String).alias(c) for c in keys.values()))
    if lines.is_empty():
        return empty
    tokens = lines.item(0, text).split('"')
    last = len(tokens) - 1
    key_at = {
        tokens[i]: i for i in range(1, last) if tokens[i + 1].startswith(":") and tokens[i - 1].endswith(("{", ","))
    }
    key_at = {key: i for key, i in key_at.items() if key in keys}
    value_at = {key: i + 2 if tokens[i + 1] == ":" else i + 1 for key, i in key_at.items()}
    wanted = sorted(set(key_at.values()) | set(value_at.values()) | {last})
    closing = tokens[last][len(tokens[last].rstrip("}]")) :]
    lines = lines.filter(~pl.col(text).str.contains("\\", literal=True))
    if lines.is_empty():
        return empty
    try:
        tokens_read = pl.read_csv(
            lines.get_column(text).str.join("\n").item().encode(),
            has_header=False,
            separator='"',
            quote_char=None,
            columns=wanted,
            infer_schema=False,
        )
    except pl.exceptions.PolarsError:
        return empty
    tokens_read.columns = [f"t{i}" for i in wanted]
    if tokens_read.height != lines.height:
        return empty
    end = pl.col(f"t{last}")
    ends = end.str.ends_with(closing) & (end.str.starts_with(":") if tokens[last].startswith(":") else end == closing)
    same = pl.all_horizontal([*(pl.col(f"t{i}") == key for key, i in key_at.items()), ends]).fill_null(False)
    values = []
    for key, name in keys.items():
        i = value_at.get(key)
        if i is None:
            values.append(pl.lit(None, pl.String).alias(name))
        elif i == key_at[key] + 2:
            values.append(pl.col(f"t{i}").alias(name))
        else:
            values.append(pl.col(f"t{i}").str.strip_chars_start(":").str.strip_chars_end(",}").alias(name))
    return (
        pl.concat([lines.select("line", "recv"), tokens_read], how="horizontal")
        .filter(same)
        .select("line", "recv", *values)
    )


def _symbols(natives: pl.Series) -> dict[str, str | None]:
    """Each distinct native symbol's canonical form, None where it cannot be split."""
    out = {}
    for native in natives.unique().drop_nulls().to_list():
        try:
            out[native] = canonical_symbol(native)
        except UnknownSymbol:
            out[native] = None
    return out


def _with_symbol(fields: pl.DataFrame) -> pl.DataFrame:
    symbols = _symbols(fields.get_column("native"))
    return fields.with_columns(symbol=pl.col("native").replace_strict(symbols, default=None, return_dtype=pl.String))


def _book_tickers(lines: pl.DataFrame, venue: str, market: str) -> pl.DataFrame:
    """``book_ticker`` quotes (plus ``line``) for the lines that decode into a valid quote."""
    fields = _flat(
        lines, {"s": "native", "b": "bid", "B": "bid_size", "a": "ask", "A": "ask_size", "u": "seq", "E": "event"}
    )
    fields = _with_symbol(fields).with_columns(
        pl.col("bid", "bid_size", "ask", "ask_size").cast(pl.Float64, strict=False),
        pl.col("seq", "event").cast(pl.Int64, strict=False),
        has_event=pl.col("event").is_not_null(),  # evaluated on the text: the key is there
    )
    # The handler's rules for a quote row; a line failing them goes to it for the exact reason.
    ok = (
        pl.all_horizontal(pl.col("symbol", "bid", "bid_size", "ask", "ask_size", "seq").is_not_null())
        & pl.all_horizontal(pl.col("bid", "bid_size", "ask", "ask_size").is_finite())
        & (~pl.col("has_event") | pl.col("event").is_not_null())
        & (pl.col("bid") > 0)
        & (pl.col("ask") > 0)
        & (pl.col("bid_size") >= 0)
        & (pl.col("ask_size") >= 0)
        & (pl.col("bid") < pl.col("ask"))
    )
    return fields.filter(ok).select(
        "line",
        pl.when("has_event").then(pl.col("event") * MS).otherwise(pl.col("recv")).cast(UTC_NS).alias("ts"),
        pl.when("has_event").then(pl.lit("venue")).otherwise(pl.lit("receive")).alias("ts_source"),
        pl.col("recv").cast(UTC_NS).alias("recv_ts"),
        pl.lit(venue).alias("venue"),
        pl.lit(market).alias("market"),
        "symbol",
        pl.lit(BOOK_TICKER).alias("channel"),
        "bid",
        "ask",
        "bid_size",
        "ask_size",
        "seq",
    )


def _trades(lines: pl.DataFrame, venue: str, market: str, *, aggregate: bool) -> pl.DataFrame:
    """``trades`` rows (plus ``line``) for the trade (or aggTrade) lines that decode into a valid trade."""
    keys = {"s": "native", "p": "price", "q": "size", "T": "time", "m": "maker", "a" if aggregate else "t": "id"}
    fields = _with_symbol(_flat(lines, keys)).with_columns(
        pl.col("price", "size").cast(pl.Float64, strict=False),
        pl.col("time", "id").cast(pl.Int64, strict=False),
    )
    ok = (
        pl.all_horizontal(pl.col("symbol", "price", "size", "time", "id").is_not_null())
        & pl.col("price").is_finite()
        & pl.col("size").is_finite()
        & pl.col("maker").is_in(["true", "false"])
        & (pl.col("price") > 0)
        & (pl.col("size") > 0)
    )
    trade_id = pl.col("id").cast(pl.String)
    return fields.filter(ok).select(
        "line",
        (pl.col("time") * MS).cast(UTC_NS).alias("ts"),
        pl.lit("venue").alias("ts_source"),
        pl.col("recv").cast(UTC_NS).alias("recv_ts"),
        pl.lit(venue).alias("venue"),
        pl.lit(market).alias("market"),
        "symbol",
        "price",
        "size",
        pl.when(pl.col("maker") == "true").then(pl.lit("sell")).otherwise(pl.lit("buy")).alias("side"),
        (pl.lit("agg:") + trade_id if aggregate else trade_id).alias("trade_id"),
    )


def _replay_rest(rest: pl.DataFrame, handler: BinanceHandler) -> list[pl.DataFrame]:
    """Depth diffs, snapshots and every line the vectorised decoders left, in capture order;
    returns the ``ws_book`` quote frames of the diff runs applied at once."""
    grid = _grid_depth(rest, handler)
    if grid is None:
        for recv, msg in rest.select("recv", "msg").iter_rows():
            handler.on_message(recv, msg.encode())
        return []
    books, depth, snapshots = grid
    handler.new_book = lambda symbol: GridBook(books[symbol])
    rows = rest.select("line", "recv").join(depth.drop("recv"), on="line", how="left", maintain_order="left")
    # A row continues a run when it and the row before are diffs of one symbol and its ids follow
    # (handler rules for a book past its first diff: USD-M pu == previous u, spot U == previous u + 1).
    before = {c: pl.col(c).shift(1) for c in ("native", "last")}
    follows = pl.when(pl.col("prev").is_not_null()).then(pl.col("prev") == before["last"])
    follows = follows.otherwise(pl.col("first") == before["last"] + 1)
    continues = ((pl.col("native") == before["native"]) & follows & (pl.col("last") > before["last"])).fill_null(False)
    starts = rows.with_row_index("i").filter(~continues).get_column("i").to_list()
    line, recv, native, k, event, first, last, prev = (rows.get_column(c).to_list() for c in rows.columns)
    msgs = rest.get_column("msg")
    quotes = []
    for start, stop in zip(starts, [*starts[1:], rows.height], strict=True):
        i = start
        while i < stop:
            if native[i] is None:
                if (snap := snapshots.get(line[i])) is not None:
                    handler.records += 1
                    symbol, last_id, event_ns, index = snap
                    handler.on_book_snapshot(recv[i], symbol, last_id, event_ns, index, msgs[i])
                else:
                    handler.on_message(recv[i], msgs[i].encode())
                i += 1
                continue
            state = handler.depth.get(native[i])
            if i > start and state.book is not None and not state.first and state.last_id == last[i - 1]:
                # The book holds the diff before: the rest of the run follows it, applied at once.
                run = slice(i, stop)
                applied, crossed = _apply_chain(handler, native[i], k[i], recv[run], event[run], last[run], quotes)
                if crossed:  # the last diff applied crossed the book: the handler discards it
                    c = i + applied - 1
                    handler.records += 1
                    state.last_id = last[c]
                    handler.emit(state, native[c], recv[c], event[c] * MS, last[c], msgs[c])
                i += applied
                continue
            handler.records += 1
            handler.on_diff(Diff(recv[i], msgs[i], native[i], event[i] * MS, first[i], last[i], prev[i], k[i]))
            i += 1
    return quotes


def _apply_chain(
    handler: BinanceHandler, native: str, k: int, recv: list, event: list, last: list, quotes: list
) -> tuple[int, bool]:
    """Apply one symbol's diffs ``k`` onwards (each following the one before, the first following
    the book) in one compiled loop; append a ``ws_book`` quote frame for those that moved the top
    and absorb the rest, as ``on_diff`` would one by one. Returns how many were applied and
    whether the last of them crossed the book (the loop stops there; that diff is left to the
    caller, which has the handler discard the book)."""
    state = handler.depth[native]
    book = state.book
    now = book.best()
    tops = book.apply_run(k, k + len(last))
    crossed = _crossed(tops, len(book.diffs.grid))
    clean = len(tops) - crossed
    handler.records += clean
    columns = [np.concatenate([[before], after[:clean]]) for before, after in zip(now, tops, strict=True)]
    moved = np.flatnonzero(np.any([np.diff(c) != 0 for c in columns], axis=0))
    handler.absorb(BOOK_UNCHANGED, clean - len(moved))
    if clean:
        state.first, state.last_id = False, last[clean - 1]
    if not crossed:  # (a crossed book is discarded by the caller, top and all)
        state.top = book.top()
    if len(moved):
        grid, n = book.diffs.grid, len(book.diffs.grid)
        bid_rank, bid_size, ask_rank, ask_size = (c[1:][moved] for c in columns)
        has_bid, has_ask = bid_rank >= 0, ask_rank < n
        quotes.append(
            pl.DataFrame(
                {
                    "ts": np.asarray(event[:clean], dtype=np.int64)[moved] * MS,
                    "ts_source": "venue",
                    "recv_ts": np.asarray(recv[:clean], dtype=np.int64)[moved],
                    "venue": handler.venue,
                    "market": handler.market,
                    "symbol": handler.symbol(native),
                    "channel": WS_BOOK,
                    "bid": np.where(has_bid, grid[np.where(has_bid, bid_rank, 0)], np.nan),
                    "ask": np.where(has_ask, grid[np.where(has_ask, ask_rank, 0)], np.nan),
                    "bid_size": np.where(has_bid, bid_size, np.nan),
                    "ask_size": np.where(has_ask, ask_size, np.nan),
                    "seq": np.asarray(last[:clean], dtype=np.int64)[moved],
                }
            ).with_columns(
                pl.col("ts", "recv_ts").cast(UTC_NS), pl.col("bid", "ask", "bid_size", "ask_size").fill_nan(None)
            )
        )
    return len(tops), crossed


def _crossed(tops, n: int) -> bool:
    """Whether the last top of a run crosses (the compiled loop stops after such a diff)."""
    return bool(len(tops) and 0 <= tops.bid_rank[-1] >= tops.ask_rank[-1] < n)


def _grid_depth(rest: pl.DataFrame, handler: BinanceHandler):
    """Every depth diff and snapshot of the capture parsed at once onto per-symbol price grids:
    ``(GridDiffs per native symbol, the depth lines' ids with each one's index ``k`` among its
    symbol's diffs, (symbol, last id, event ns, grid index) per snapshot line)``, or None when some
    depth line or snapshot cannot be read this way."""
    depth = rest.filter(pl.col("kind") == DEPTH)
    if depth.is_empty():
        return None
    msg = pl.col("msg")
    tail = pl.when(msg.str.ends_with("]}}")).then(3).when(msg.str.ends_with("]}")).then(2).otherwise(None)
    # Offsets found once; they are bytes and slices count characters, the same for the ASCII
    # text Binance sends (``parse`` checks the capture is ASCII before it comes here).
    depth = depth.with_columns(
        _b=msg.str.find('"b":[', literal=True), _a=msg.str.find('"a":[', literal=True), _end=msg.str.len_bytes() - tail
    )
    b_at, a_at, end = pl.col("_b"), pl.col("_a"), pl.col("_end")
    depth = depth.with_columns(
        bids=msg.str.slice(b_at + 5, a_at - b_at - 7),  # '["p","q"],["p","q"]' between "b":[ and ],"a":[
        asks=msg.str.slice(a_at + 5, end - a_at - 5),
        head=msg.str.slice(0, b_at),
        layout_ok=(b_at < a_at) & (msg.str.slice(a_at - 2, 2) == "],") & end.is_not_null(),
    )
    if not depth.get_column("layout_ok").all():
        return None
    header = _flat(depth, {"s": "native", "E": "event", "U": "first", "u": "last", "pu": "prev"}, "head").with_columns(
        pl.col("event", "first", "last", "prev").cast(pl.Int64, strict=False)
    )
    if (
        header.height != depth.height
        or header.select(pl.col("native", "event", "first", "last").null_count()).sum_horizontal().item()
    ):
        return None
    depth = depth.with_columns(header.select("native", "event", "first", "last", "prev"))
    depth = depth.with_columns(k=pl.int_range(pl.len(), dtype=pl.Int64).over("native"))
    natives = depth.get_column("native").unique(maintain_order=True).to_list()
    if None in _symbols(depth.get_column("native")).values():
        return None  # the handler quarantines an unknown symbol's diffs
    snapshots = _snapshots(rest.filter(pl.col("kind") == SNAPSHOT))
    if snapshots is None:
        return None
    if handler.snapshot_symbol:
        owner = next((n for n in natives if same_market(n, handler.snapshot_symbol)), None)
    else:
        owner = natives[0] if len(natives) == 1 else None
    if snapshots and owner is None:
        return None
    books, snapshot_rows = {}, {}
    for native in natives:
        part = depth.filter(pl.col("native") == native) if len(natives) > 1 else depth
        own = snapshots if native == owner else []
        book = _levels(part, own)
        if book is None or not (book.grid > 0).all():  # the handler quarantines a price that is not positive
            return None
        books[native] = book
        for j, (line, last_id, event_ns, _) in enumerate(own):
            snapshot_rows[line] = (native, last_id, event_ns, part.height + j)
    return books, depth.select("line", "recv", "native", "k", "event", "first", "last", "prev"), snapshot_rows


def _snapshots(lines: pl.DataFrame) -> list | None:
    """REST depth snapshots in the capture: ``(line, lastUpdateId, E ns, (bids, asks))`` each, or
    None when one does not decode (the handler then quarantines it)."""
    out = []
    for line, text in lines.select("line", "msg").iter_rows():
        try:
            body = _decode(text)
            bids = [(float(p), float(q)) for p, q, *_ in body["bids"]]
            asks = [(float(p), float(q)) for p, q, *_ in body["asks"]]
            event = body.get("E")
            out.append((line, int(body["lastUpdateId"]), None if event is None else int(event) * MS, (bids, asks)))
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            return None
    return out


def _levels(part: pl.DataFrame, snapshots: list) -> GridDiffs | None:
    """One symbol's diffs (then its snapshots) as ``GridDiffs``; None when the level text does not
    parse as ``["price","size"]`` pairs of finite numbers, or a size is negative."""
    counts = part.select(pl.col("bids", "asks").str.count_matches("[", literal=True).cast(pl.Int64))
    bid_counts, ask_counts = counts.get_column("bids").to_numpy(), counts.get_column("asks").to_numpy()
    total = int(bid_counts.sum() + ask_counts.sum())
    # All levels as one text, each starting with '[': read as CSV with '[' ending rows and '"'
    # separating fields, a level '"61837.63","3.78"],' has its price and size in fields 1 and 3.
    text = pl.concat([part.get_column("bids"), part.get_column("asks")]).str.join("").item()
    try:
        levels = pl.read_csv(
            text.encode(),
            has_header=False,
            separator='"',
            quote_char=None,
            eol_char="[",
            columns=[1, 3],
            schema_overrides={"column_2": pl.Float64, "column_4": pl.Float64},
        ).slice(1)  # the text starts with '[': an empty first row
    except pl.exceptions.PolarsError:
        return None
    if levels.height != total or levels.null_count().sum_horizontal().item():
        return None
    prices, sizes = levels.to_series(0).to_numpy(), levels.to_series(1).to_numpy()
    n_bids = int(bid_counts.sum())
    sides = []
    for index, (p, q, n) in enumerate(
        ((prices[:n_bids], sizes[:n_bids], bid_counts), (prices[n_bids:], sizes[n_bids:], ask_counts))
    ):
        extra = [s[3][index] for s in snapshots]
        sides.append(
            (
                np.concatenate([p, *(np.array([lv[0] for lv in e], dtype=float) for e in extra)]),
                np.concatenate([q, *(np.array([lv[1] for lv in e], dtype=float) for e in extra)]),
                np.concatenate([n, np.array([len(e) for e in extra], dtype=np.int64)]),
            )
        )
    (bp, bq, bn), (ap, aq, an) = sides
    every = np.concatenate([bp, bq, ap, aq])
    if not np.isfinite(every).all() or np.any(bq < 0) or np.any(aq < 0):
        return None  # the handler quarantines what is not a finite, non-negative number
    return GridDiffs.build(bp, bq, bn, ap, aq, an, decimals=_decimals(text))


def _decimals(text: str) -> int | None:
    """Decimal places of the first price in the level text (Binance pads every price of a symbol
    to the same places)."""
    start = text.find('"') + 1
    price = text[start : text.find('"', start)]
    whole, dot, fraction = price.partition(".")
    return len(fraction) if whole.isdigit() and (not dot or fraction.isdigit()) else None

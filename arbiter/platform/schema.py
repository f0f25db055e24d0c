"""The data contract: one Arrow schema per lake table, declared once.

Every writer validates against these schemas at the lake boundary (``conform``) and a test pins
them, so a change here is a deliberate, reviewed change of the contract. A market is
``(venue, market, symbol)``; timestamps are UTC nanoseconds; optional fields are nullable and
never filled with invented values.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

UTC_NS = pa.timestamp("ns", tz="UTC")

MARKET_TYPES = ("spot", "linear_perp", "inverse_perp", "future")
TS_SOURCES = ("venue", "receive")
SIDES = ("buy", "sell")


def _f(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


INSTRUMENTS = pa.schema(
    [
        _f("venue", pa.string()),
        _f("market", pa.string()),
        _f("symbol", pa.string()),
        _f("base", pa.string()),
        _f("quote", pa.string()),
        _f("settle", pa.string(), nullable=True),
        _f("contract_size", pa.float64(), nullable=True),
        _f("price_precision", pa.int32()),
        _f("size_precision", pa.int32()),
        _f("tick_size", pa.float64()),
        _f("lot_size", pa.float64()),
        _f("min_notional", pa.float64(), nullable=True),
        _f("maker_fee", pa.float64(), nullable=True),
        _f("taker_fee", pa.float64(), nullable=True),
        _f("withdraw_fee", pa.float64(), nullable=True),
        _f("valid_from", UTC_NS),
    ]
)

# Every market event starts the same way: when (venue or receive time, and which), and on which
# market — (venue, market type, canonical BASE-QUOTE symbol).
MARKET_EVENT = [
    _f("ts", UTC_NS),
    _f("ts_source", pa.string()),
    _f("recv_ts", UTC_NS),
    _f("venue", pa.string()),
    _f("market", pa.string()),
    _f("symbol", pa.string()),
]

QUOTES = pa.schema(
    [
        *MARKET_EVENT,
        _f("channel", pa.string()),
        _f("bid", pa.float64(), nullable=True),
        _f("ask", pa.float64(), nullable=True),
        _f("bid_size", pa.float64(), nullable=True),
        _f("ask_size", pa.float64(), nullable=True),
        _f("seq", pa.int64(), nullable=True),
    ]
)

TRADES = pa.schema(
    [
        *MARKET_EVENT,
        _f("price", pa.float64()),
        _f("size", pa.float64()),
        _f("side", pa.string(), nullable=True),
        _f("trade_id", pa.string()),
    ]
)

# OHLCV candles as venues publish them (klines, OHLC, candles): ``ts`` is the bar's open time.
BARS = pa.schema(
    [
        *MARKET_EVENT,
        _f("interval", pa.string()),
        _f("open", pa.float64()),
        _f("high", pa.float64()),
        _f("low", pa.float64()),
        _f("close", pa.float64()),
        _f("volume", pa.float64()),
        _f("quote_volume", pa.float64(), nullable=True),
        _f("trade_count", pa.int64(), nullable=True),
    ]
)

DOCUMENTS = pa.schema(
    [
        _f("ts", UTC_NS),
        _f("source", pa.string()),
        _f("doc_id", pa.string()),
        _f("title", pa.string(), nullable=True),
        _f("body", pa.string()),
        _f("url", pa.string(), nullable=True),
    ]
)

LISTINGS = pa.schema(
    [
        _f("ts", UTC_NS),
        _f("venue", pa.string()),
        _f("listing_id", pa.string()),
        _f("title", pa.string()),
        _f("description", pa.string(), nullable=True),
        _f("brand", pa.string(), nullable=True),
        _f("price", pa.float64(), nullable=True),
        _f("currency", pa.string(), nullable=True),
        _f("image_uri", pa.string(), nullable=True),
    ]
)

# What a source delivered, byte for byte (a REST response, a capture, a dropped file, a web page),
# with the facts of its delivery: origin is the URL without secrets or the file's key; meta holds
# status, content type, validators (ETag, Last-Modified) and request parameters as JSON.
RAW_SNAPSHOTS = pa.schema(
    [
        _f("received_at", UTC_NS),
        _f("source", pa.string()),
        _f("origin", pa.string()),
        _f("sha256", pa.string()),
        _f("meta", pa.string()),
        _f("body", pa.binary()),
    ]
)

# One rejected raw record. ``target`` is the table it was meant for and ``field`` the offending
# field where one can be named; ``raw`` keeps the original bytes so nothing is ever lost.
QUARANTINE = pa.schema(
    [
        _f("target", pa.string()),
        _f("source", pa.string()),
        _f("partition", pa.string()),
        _f("reason", pa.string()),
        _f("field", pa.string(), nullable=True),
        _f("raw", pa.binary()),
    ]
)

# What enrichment read in a document: one row per event it states, ``event_index`` 0 being the
# document's main (most confident) event. The window is the event's effective time where the text
# states it; ``extractor`` names the method (the offline rules or a language model), ``model`` and
# ``prompt_version`` the exact model and instructions, so a figure is never mixed across them.
# The last five columns describe a product in a marketplace listing; announcements leave them null.
EVENT_TYPES = (
    "deposit_suspension",
    "withdrawal_suspension",
    "deposit_withdrawal_suspension",
    "delisting",
    "listing",
    "maintenance",
    "network_upgrade",
    "other",
)
DOCUMENT_EVENTS = pa.schema(
    [
        _f("doc_id", pa.string()),
        _f("event_index", pa.int32()),
        _f("venue", pa.string()),
        _f("assets", pa.list_(pa.string())),
        _f("network", pa.string(), nullable=True),
        _f("event_type", pa.string()),
        _f("effective_start", UTC_NS, nullable=True),
        _f("effective_end", UTC_NS, nullable=True),
        _f("confidence", pa.float64()),
        _f("extractor", pa.string()),
        _f("model", pa.string(), nullable=True),
        _f("prompt_version", pa.string()),
        _f("brand", pa.string(), nullable=True),
        _f("product_model", pa.string(), nullable=True),
        _f("variant", pa.string(), nullable=True),
        _f("condition", pa.string(), nullable=True),
        _f("quantity", pa.int64(), nullable=True),
    ]
)

# The language model's answers, kept so unchanged documents are never sent twice: one row per
# document content (``doc_hash``) read by a model with a prompt version. ``answer`` is the validated
# answer as JSON; ``status`` is answered or quarantined, with ``reason`` and ``field`` saying why;
# the tokens are what the answer cost.
MODEL_ANSWERS = pa.schema(
    [
        _f("doc_hash", pa.string()),
        _f("model", pa.string()),
        _f("prompt_version", pa.string()),
        _f("status", pa.string()),
        _f("answer", pa.string(), nullable=True),
        _f("reason", pa.string(), nullable=True),
        _f("field", pa.string(), nullable=True),
        _f("prompt_tokens", pa.int64()),
        _f("completion_tokens", pa.int64()),
        _f("answered_at", UTC_NS),
    ]
)

# The pictures listings point at (``listings.image_uri``), byte for byte, where a source delivers
# them with its listings (the simulator's marketplaces); ``uri`` is the listing's ``image_uri``.
LISTING_IMAGES = pa.schema(
    [
        _f("uri", pa.string()),
        _f("sha256", pa.string()),
        _f("body", pa.binary()),
    ]
)

# Trained models, each version kept: the artifact (ONNX bytes, the format every runtime here
# loads), what it was trained on and how it scored, as JSON.
MODELS = pa.schema(
    [
        _f("name", pa.string()),
        _f("version", pa.string()),
        _f("trained_at", UTC_NS),
        _f("format", pa.string()),
        _f("artifact", pa.binary()),
        _f("trained_on", pa.string()),
        _f("metrics", pa.string()),
    ]
)

# What a listing's picture looks like (``arbiter.platform.enrich.image_features``): its facts as
# decoded, perceptual hashes (hex), a 64-bin colour histogram, edge and texture statistics, a
# fixed-length embedding, and the class an ONNX classifier gives it, with the versions of both.
IMAGE_FEATURES = pa.schema(
    [
        _f("venue", pa.string()),
        _f("listing_id", pa.string()),
        _f("image_uri", pa.string()),
        _f("format", pa.string()),  # read from the content
        _f("format_mismatch", pa.bool_()),  # the name's extension promised another
        _f("source_mode", pa.string()),  # the file's pixel mode (CMYK, RGBA, I;16...)
        _f("width", pa.int32()),  # full size as displayed (after EXIF rotation)
        _f("height", pa.int32()),
        _f("orientation", pa.int32()),  # EXIF orientation, 1 when upright or absent
        _f("phash", pa.string()),
        _f("dhash", pa.string()),
        _f("colour_hist", pa.list_(pa.float32())),
        _f("edge_density", pa.float64()),
        _f("edge_mean", pa.float64()),
        _f("edge_orientation_entropy", pa.float64()),
        _f("texture_entropy", pa.float64()),
        _f("texture_contrast", pa.float64()),
        _f("embedding", pa.list_(pa.float32())),
        _f("class_label", pa.string(), nullable=True),  # null when no classifier was given
        _f("class_score", pa.float64(), nullable=True),
        _f("classifier", pa.string(), nullable=True),
        _f("feature_version", pa.string()),
    ]
)

# Listings that are the same product, across venues (``enrich.entity_clusters``): a null
# ``cluster_id`` is noise (matched nothing); ids carry over from run to run for continuing clusters.
ENTITY_CLUSTERS = pa.schema(
    [
        _f("venue", pa.string()),
        _f("listing_id", pa.string()),
        _f("cluster_id", pa.int64(), nullable=True),
        _f("probability", pa.float64(), nullable=True),
    ]
)

# Markets whose prices move together in a window (``enrich.instrument_clusters``): candidates for
# pair and basket arbitrage; ids carry over from the window before.
INSTRUMENT_CLUSTERS = pa.schema(
    [
        _f("window_start", UTC_NS),
        _f("venue", pa.string()),
        _f("market", pa.string()),
        _f("symbol", pa.string()),
        _f("cluster_id", pa.int64(), nullable=True),
        _f("probability", pa.float64(), nullable=True),
        _f("returns", pa.int64()),
        _f("mean_correlation", pa.float64(), nullable=True),
    ]
)

# The features of a pair of markets of one entity at a decision (``arbiter.platform.features``
# computes them, in this order, which is also the policy's input order): the spread both ways after
# fees, then each leg's state oriented by the trade (the leg bought at its ask, the leg sold at its
# bid), the lead-lag return difference, and whether funds can move between the venues now.
PAIR_FEATURES: tuple[str, ...] = (
    "net_spread_bps",
    "gross_spread_bps",
    "fee_bps",
    "direction",  # +1: buy leg a and sell leg b, -1: the other way
    *(
        f"{side}_{name}"
        for name in ("spread_bps", "imbalance", "ret_bps", "vol_bps", "age_ms", "unchanged_ms")
        for side in ("buy", "sell")
    ),
    "buy_depth_notional",
    "sell_depth_notional",
    "lead_lag_bps",
    "can_move_funds",
)

# Every moment a pair's net spread was above zero (``arbiter.platform.opportunities``), its features
# and the realised outcome of acting on it: both legs filled ``latency_ms`` later at the touch and
# closed ``horizon_ms`` after that, per unit of notional, four taker fees paid. Outcome columns are
# null where the data does not reach the exit yet. ``training_set`` has the same columns.
OPPORTUNITIES = pa.schema(
    [
        *(_f(name, pa.string()) for name in ("symbol", "pair", "venue_a", "market_a", "venue_b", "market_b")),
        _f("decision_ts", UTC_NS),
        *(_f(name, pa.float64(), nullable=True) for name in PAIR_FEATURES),
        _f("entry_ts", UTC_NS),
        _f("exit_ts", UTC_NS),
        *(
            _f(name, pa.float64(), nullable=True)
            for name in ("buy_entry", "sell_entry", "buy_exit", "sell_exit", "gross_pnl_bps", "fees_bps")
        ),
        _f("net_pnl_bps", pa.float64(), nullable=True),
        _f("depth_notional", pa.float64(), nullable=True),
        _f("latency_ms", pa.float64()),
        _f("horizon_ms", pa.float64()),
    ]
)

# The policy registry (``learning.registry``): one row per trained policy version, the ONNX bytes
# with everything needed to use and to judge them; JSON columns hold lists and settings.
POLICIES = pa.schema(
    [
        _f("version", pa.string()),
        _f("trained_at", UTC_NS),
        _f("training_run", pa.string()),
        _f("role", pa.string()),  # challenger (deployable) or fold (a walk-forward fold's model)
        _f("fold", pa.int64()),
        _f("seed", pa.int64()),
        _f("algorithm", pa.string()),
        _f("onnx", pa.binary()),
        _f("feature_spec", pa.string()),  # JSON: the ordered input features
        _f("normalisation", pa.string()),  # JSON: per-feature mean and scale (also inside the graph)
        _f("execution", pa.string()),  # JSON: notional, sizes, impact and penalty the policy learned with
        _f("hyperparameters", pa.string()),  # JSON
        _f("train_start", UTC_NS),
        _f("train_end", UTC_NS),
        _f("holdout_start", UTC_NS, nullable=True),
        _f("holdout_end", UTC_NS, nullable=True),
        _f("training_partitions", pa.string()),  # JSON: the opportunities partitions trained on
        _f("code_version", pa.string()),
        _f("metrics", pa.string()),  # JSON: what training measured (steps/s, curve, ONNX parity)
    ]
)

# Every decision about the champion policy: first, promote, keep (the challenger lost, ``reason``
# says how) or rollback; the newest row's ``champion_version`` is the champion.
POLICY_CHAMPIONS = pa.schema(
    [
        _f("decided_at", UTC_NS),
        _f("action", pa.string()),
        _f("champion_version", pa.string(), nullable=True),
        _f("challenger_version", pa.string(), nullable=True),
        _f("previous_version", pa.string(), nullable=True),
        _f("reason", pa.string()),
        _f("challenger_net_pnl", pa.float64(), nullable=True),
        _f("champion_net_pnl", pa.float64(), nullable=True),
    ]
)

# How each strategy did, per walk-forward fold and pooled, on training and holdout windows (and
# later in shadow scoring), for the policy version that was judged. Money is in quote currency.
POLICY_EVALUATION = pa.schema(
    [
        _f("policy_version", pa.string()),
        _f("strategy", pa.string()),
        _f("window", pa.string()),  # train | holdout | shadow
        _f("fold", pa.string()),  # 1, 2, ... or pooled
        _f("oracle_share", pa.float64(), nullable=True),
        _f("net_pnl", pa.float64()),
        _f("sharpe", pa.float64()),
        _f("hit_rate", pa.float64(), nullable=True),
        _f("max_drawdown", pa.float64()),
        _f("turnover", pa.float64()),
        _f("trades", pa.int64()),
        _f("decisions", pa.int64()),
        _f("seeds", pa.int64()),  # the policy's figures are the median over this many seeds
        _f("median_seed", pa.int64(), nullable=True),  # the seed with the median holdout net P&L
        _f("params", pa.string()),  # JSON: the strategy's tuned parameters
        _f("evaluated_at", UTC_NS),
    ]
)

CONTRACT: dict[str, pa.Schema] = {
    "instruments": INSTRUMENTS,
    "quotes": QUOTES,
    "trades": TRADES,
    "bars": BARS,
    "documents": DOCUMENTS,
    "listings": LISTINGS,
    "raw_snapshots": RAW_SNAPSHOTS,
    "quarantine": QUARANTINE,
    "document_events": DOCUMENT_EVENTS,
    "model_answers": MODEL_ANSWERS,
    "listing_images": LISTING_IMAGES,
    "models": MODELS,
    "image_features": IMAGE_FEATURES,
    "entity_clusters": ENTITY_CLUSTERS,
    "instrument_clusters": INSTRUMENT_CLUSTERS,
    "opportunities": OPPORTUNITIES,
    "training_set": OPPORTUNITIES,
    "policies": POLICIES,
    "policy_champions": POLICY_CHAMPIONS,
    "policy_evaluation": POLICY_EVALUATION,
}


class SchemaMismatch(ValueError):
    """Data offered for a table does not match its declared schema.

    The message names the table, the partition and the column, so the failing writer is obvious
    from one line of a log.
    """

    def __init__(self, table: str, partition: str, column: str, problem: str):
        self.table, self.partition, self.column, self.problem = table, partition, column, problem
        super().__init__(f"table {table!r}, partition {partition!r}, column {column!r}: {problem}")


def _family(t: pa.DataType) -> str:
    """The logical type family: the physical flavours a writer may hand over for one logical type."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return "binary"
    if pa.types.is_dictionary(t):
        return _family(t.value_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return f"list<{_family(t.value_type)}>"
    return str(t)


def conform(frame: pl.DataFrame, schema: pa.Schema, *, name: str, partition: str) -> pl.DataFrame:
    """Return ``frame`` with exactly the columns of ``schema``, in order, or raise ``SchemaMismatch``.

    Column order may differ and text may come in any flavour (a Polars ``Categorical`` stays
    dictionary-encoded, which is how Parquet stores it anyway); an all-null column takes the
    declared type. Anything else — a missing or extra column, another type, a null in a required
    field — is a contract violation, never patched quietly.
    """
    extra = [c for c in frame.columns if c not in schema.names]
    if extra:
        raise SchemaMismatch(name, partition, extra[0], "column is not in the table's schema")
    missing = [f for f in schema if f.name not in frame.columns]
    if missing:
        raise SchemaMismatch(name, partition, missing[0].name, f"missing (expected {missing[0].type})")
    have = frame.select(schema.names).head(0).to_arrow().schema
    declared = pl.from_arrow(schema.empty_table()).schema
    nulls = frame.select(schema.names).null_count().row(0, named=True)
    casts = []
    for field in schema:
        got = have.field(field.name).type
        if pa.types.is_null(got):
            casts.append(pl.col(field.name).cast(declared[field.name]))
        elif _family(got) != _family(field.type):
            raise SchemaMismatch(name, partition, field.name, f"expected {field.type}, got {got}")
        if nulls[field.name] and not field.nullable:
            raise SchemaMismatch(name, partition, field.name, f"{nulls[field.name]} null(s) in a required field")
    return frame.select(schema.names).with_columns(casts) if casts else frame.select(schema.names)

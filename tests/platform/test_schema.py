"""The data contract is pinned here: changing a schema means changing this test, on purpose."""

import polars as pl
import pyarrow as pa
import pytest

from arbiter.platform.schema import CONTRACT, DOCUMENT_EVENTS, QUOTES, SchemaMismatch, conform

S, F, I64, I32, B = pa.string(), pa.float64(), pa.int64(), pa.int32(), pa.binary()
LIST_S = pa.list_(pa.string())
TS = pa.timestamp("ns", tz="UTC")
# (name, type, nullable) per table, exactly as DESIGN.md lists them (``bars`` added for klines/OHLC,
# ``document_events``, ``model_answers``, ``listing_images``, ``models``, ``image_features``,
# ``entity_clusters`` and ``instrument_clusters`` for enrichment: issue 4).
OPPORTUNITIES = [
    ("symbol", S, False),
    ("pair", S, False),
    ("venue_a", S, False),
    ("market_a", S, False),
    ("venue_b", S, False),
    ("market_b", S, False),
    ("decision_ts", TS, False),
    ("net_spread_bps", F, True),
    ("gross_spread_bps", F, True),
    ("fee_bps", F, True),
    ("direction", F, True),
    ("buy_spread_bps", F, True),
    ("sell_spread_bps", F, True),
    ("buy_imbalance", F, True),
    ("sell_imbalance", F, True),
    ("buy_ret_bps", F, True),
    ("sell_ret_bps", F, True),
    ("buy_vol_bps", F, True),
    ("sell_vol_bps", F, True),
    ("buy_age_ms", F, True),
    ("sell_age_ms", F, True),
    ("buy_unchanged_ms", F, True),
    ("sell_unchanged_ms", F, True),
    ("buy_depth_notional", F, True),
    ("sell_depth_notional", F, True),
    ("lead_lag_bps", F, True),
    ("can_move_funds", F, True),
    ("entry_ts", TS, False),
    ("exit_ts", TS, False),
    ("buy_entry", F, True),
    ("sell_entry", F, True),
    ("buy_exit", F, True),
    ("sell_exit", F, True),
    ("gross_pnl_bps", F, True),
    ("fees_bps", F, True),
    ("net_pnl_bps", F, True),
    ("depth_notional", F, True),
    ("latency_ms", F, False),
    ("horizon_ms", F, False),
]

PINNED = {
    "instruments": [
        ("venue", S, False),
        ("market", S, False),
        ("symbol", S, False),
        ("base", S, False),
        ("quote", S, False),
        ("settle", S, True),
        ("contract_size", F, True),
        ("price_precision", I32, False),
        ("size_precision", I32, False),
        ("tick_size", F, False),
        ("lot_size", F, False),
        ("min_notional", F, True),
        ("maker_fee", F, True),
        ("taker_fee", F, True),
        ("withdraw_fee", F, True),
        ("valid_from", TS, False),
    ],
    "quotes": [
        ("ts", TS, False),
        ("ts_source", S, False),
        ("recv_ts", TS, False),
        ("venue", S, False),
        ("market", S, False),
        ("symbol", S, False),
        ("channel", S, False),
        ("bid", F, True),
        ("ask", F, True),
        ("bid_size", F, True),
        ("ask_size", F, True),
        ("seq", I64, True),
    ],
    "trades": [
        ("ts", TS, False),
        ("ts_source", S, False),
        ("recv_ts", TS, False),
        ("venue", S, False),
        ("market", S, False),
        ("symbol", S, False),
        ("price", F, False),
        ("size", F, False),
        ("side", S, True),
        ("trade_id", S, False),
    ],
    "bars": [
        ("ts", TS, False),
        ("ts_source", S, False),
        ("recv_ts", TS, False),
        ("venue", S, False),
        ("market", S, False),
        ("symbol", S, False),
        ("interval", S, False),
        ("open", F, False),
        ("high", F, False),
        ("low", F, False),
        ("close", F, False),
        ("volume", F, False),
        ("quote_volume", F, True),
        ("trade_count", I64, True),
    ],
    "documents": [
        ("ts", TS, False),
        ("source", S, False),
        ("doc_id", S, False),
        ("title", S, True),
        ("body", S, False),
        ("url", S, True),
    ],
    "listings": [
        ("ts", TS, False),
        ("venue", S, False),
        ("listing_id", S, False),
        ("title", S, False),
        ("description", S, True),
        ("brand", S, True),
        ("price", F, True),
        ("currency", S, True),
        ("image_uri", S, True),
    ],
    "model_answers": [
        ("doc_hash", S, False),
        ("model", S, False),
        ("prompt_version", S, False),
        ("status", S, False),
        ("answer", S, True),
        ("reason", S, True),
        ("field", S, True),
        ("prompt_tokens", I64, False),
        ("completion_tokens", I64, False),
        ("answered_at", TS, False),
    ],
    "listing_images": [("uri", S, False), ("sha256", S, False), ("body", B, False)],
    "opportunities": OPPORTUNITIES,
    "training_set": OPPORTUNITIES,
    "policies": [
        ("version", S, False),
        ("trained_at", TS, False),
        ("training_run", S, False),
        ("role", S, False),
        ("fold", I64, False),
        ("seed", I64, False),
        ("algorithm", S, False),
        ("onnx", B, False),
        ("feature_spec", S, False),
        ("normalisation", S, False),
        ("execution", S, False),
        ("hyperparameters", S, False),
        ("train_start", TS, False),
        ("train_end", TS, False),
        ("holdout_start", TS, True),
        ("holdout_end", TS, True),
        ("training_partitions", S, False),
        ("code_version", S, False),
        ("metrics", S, False),
    ],
    "policy_champions": [
        ("decided_at", TS, False),
        ("action", S, False),
        ("champion_version", S, True),
        ("challenger_version", S, True),
        ("previous_version", S, True),
        ("reason", S, False),
        ("challenger_net_pnl", F, True),
        ("champion_net_pnl", F, True),
    ],
    "policy_evaluation": [
        ("policy_version", S, False),
        ("strategy", S, False),
        ("window", S, False),
        ("fold", S, False),
        ("oracle_share", F, True),
        ("net_pnl", F, False),
        ("sharpe", F, False),
        ("hit_rate", F, True),
        ("max_drawdown", F, False),
        ("turnover", F, False),
        ("trades", I64, False),
        ("decisions", I64, False),
        ("seeds", I64, False),
        ("median_seed", I64, True),
        ("params", S, False),
        ("evaluated_at", TS, False),
    ],
    "models": [
        ("name", S, False),
        ("version", S, False),
        ("trained_at", TS, False),
        ("format", S, False),
        ("artifact", B, False),
        ("trained_on", S, False),
        ("metrics", S, False),
    ],
    "image_features": [
        ("venue", S, False),
        ("listing_id", S, False),
        ("image_uri", S, False),
        ("format", S, False),
        ("format_mismatch", pa.bool_(), False),
        ("source_mode", S, False),
        ("width", pa.int32(), False),
        ("height", pa.int32(), False),
        ("orientation", pa.int32(), False),
        ("phash", S, False),
        ("dhash", S, False),
        ("colour_hist", pa.list_(pa.float32()), False),
        ("edge_density", F, False),
        ("edge_mean", F, False),
        ("edge_orientation_entropy", F, False),
        ("texture_entropy", F, False),
        ("texture_contrast", F, False),
        ("embedding", pa.list_(pa.float32()), False),
        ("class_label", S, True),
        ("class_score", F, True),
        ("classifier", S, True),
        ("feature_version", S, False),
    ],
    "entity_clusters": [
        ("venue", S, False),
        ("listing_id", S, False),
        ("cluster_id", I64, True),
        ("probability", F, True),
    ],
    "instrument_clusters": [
        ("window_start", TS, False),
        ("venue", S, False),
        ("market", S, False),
        ("symbol", S, False),
        ("cluster_id", I64, True),
        ("probability", F, True),
        ("returns", I64, False),
        ("mean_correlation", F, True),
    ],
    "raw_snapshots": [
        ("received_at", TS, False),
        ("source", S, False),
        ("origin", S, False),
        ("sha256", S, False),
        ("meta", S, False),
        ("body", B, False),
    ],
    "quarantine": [
        ("target", S, False),
        ("source", S, False),
        ("partition", S, False),
        ("reason", S, False),
        ("field", S, True),
        ("raw", B, False),
    ],
    "document_events": [
        ("doc_id", S, False),
        ("event_index", I32, False),
        ("venue", S, False),
        ("assets", LIST_S, False),
        ("network", S, True),
        ("event_type", S, False),
        ("effective_start", TS, True),
        ("effective_end", TS, True),
        ("confidence", F, False),
        ("extractor", S, False),
        ("model", S, True),
        ("prompt_version", S, False),
        ("brand", S, True),
        ("product_model", S, True),
        ("variant", S, True),
        ("condition", S, True),
        ("quantity", I64, True),
    ],
}


@pytest.mark.parametrize("table", sorted(PINNED))
def test_contract_is_pinned(table):
    assert [(f.name, f.type, f.nullable) for f in CONTRACT[table]] == PINNED[table]


def test_contract_has_exactly_the_design_tables():
    assert set(CONTRACT) == set(PINNED)


def _quote_row(**overrides) -> pl.DataFrame:
    row = {
        "ts": [1_700_000_000_000_000_000],
        "ts_source": ["venue"],
        "recv_ts": [1_700_000_000_000_100_000],
        "venue": ["binance"],
        "market": ["spot"],
        "symbol": ["BTC-USDT"],
        "channel": ["book_ticker"],
        "bid": [1.0],
        "ask": [2.0],
        "bid_size": [None],
        "ask_size": [3.0],
        "seq": [None],
    }
    frame = pl.DataFrame(row).with_columns(pl.col("ts", "recv_ts").cast(pl.Datetime("ns", "UTC")))
    return frame.with_columns(**overrides) if overrides else frame


def test_conform_orders_columns_and_types_all_null_columns():
    frame = _quote_row().select(reversed(QUOTES.names))
    out = conform(frame, QUOTES, name="quotes", partition="p")
    assert out.columns == QUOTES.names
    assert out.schema["bid_size"] == pl.Float64 and out.schema["seq"] == pl.Int64


def test_conform_accepts_categorical_text():
    out = conform(_quote_row(venue=pl.lit("binance", dtype=pl.Categorical)), QUOTES, name="quotes", partition="p")
    assert out.get_column("venue").to_list() == ["binance"]


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [
        ({"bid": pl.lit("1.0")}, "bid", "expected double"),
        ({"ts": pl.col("ts").dt.replace_time_zone(None)}, "ts", "expected timestamp[ns, tz=UTC]"),
        ({"venue": pl.lit(None, dtype=pl.String)}, "venue", "null(s) in a required field"),
        ({"extra": pl.lit(1)}, "extra", "not in the table's schema"),
    ],
)
def test_conform_names_table_partition_and_column(change, column, words):
    with pytest.raises(SchemaMismatch) as info:
        conform(_quote_row(**change), QUOTES, name="quotes", partition="date=2026-11-20/hour=03")
    message = str(info.value)
    assert "'quotes'" in message and "'date=2026-11-20/hour=03'" in message and f"'{column}'" in message
    assert words in message


def test_conform_accepts_any_flavour_of_a_list_of_text():
    row = {n: [None] for n in DOCUMENT_EVENTS.names} | {
        "doc_id": ["d"],
        "event_index": [0],
        "venue": ["binance"],
        "assets": [["ETH", "BTC"]],
        "event_type": ["maintenance"],
        "confidence": [0.9],
        "extractor": ["offline_rules"],
        "prompt_version": ["rules-1"],
    }
    frame = pl.DataFrame(row).with_columns(pl.col("event_index").cast(pl.Int32))
    out = conform(frame, DOCUMENT_EVENTS, name="document_events", partition="p")
    assert out.get_column("assets").to_list() == [["ETH", "BTC"]] and out.schema["quantity"] == pl.Int64
    with pytest.raises(SchemaMismatch, match="'assets': expected list<item: string>"):
        conform(frame.with_columns(assets=pl.lit([1, 2])), DOCUMENT_EVENTS, name="document_events", partition="p")


def test_conform_reports_missing_column():
    with pytest.raises(SchemaMismatch, match="'seq': missing"):
        conform(_quote_row().drop("seq"), QUOTES, name="quotes", partition="p")

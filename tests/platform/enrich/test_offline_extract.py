"""The offline extractor on real and held-out announcements, on the simulator's announcements
(whose truth is known to the minute), and on cases written to pin one rule each."""

from datetime import UTC, datetime

import polars as pl
import pytest
from pydantic import ValidationError

from arbiter.platform.enrich.evaluate import LABEL_ANSWERS, LABELLED_DIR, evaluate, load_labelled, main_events
from arbiter.platform.enrich.events import Event
from arbiter.platform.enrich.offline_extract import EXTRACTOR, RULES_VERSION, extract, extract_frame
from arbiter.platform.lake import Lake
from arbiter.platform.schema import DOCUMENT_EVENTS, conform
from arbiter.platform.sources.announcements import simulate_announcements

DATA = LABELLED_DIR


def _types(title: str, body: str, venue: str = "binance") -> list[str]:
    return [e.event_type for e in extract("d", title, body, venue)]


def test_accuracy_on_the_binance_samples():
    result = evaluate(load_labelled(DATA / "binance_dev.jsonl", venue="binance"))
    assert result["documents"] == 41
    assert result["accuracy"] >= 0.95, result["misses"]


def test_accuracy_on_held_out_announcements_of_other_venues():
    labelled = load_labelled(DATA / "unseen.jsonl")
    assert labelled.height >= 12 and set(labelled.get_column("category")) == set(LABEL_ANSWERS)
    assert labelled.get_column("source").n_unique() >= 4
    result = evaluate(labelled)
    assert result["accuracy"] >= 0.95, result["misses"]


def test_evaluate_scores_what_the_extractor_says():
    labelled = load_labelled(DATA / "unseen.jsonl")

    def always_listing(documents: pl.DataFrame) -> pl.DataFrame:
        return extract_frame(documents).with_columns(event_type=pl.lit("listing"))

    result = evaluate(labelled, always_listing)
    listings = labelled.filter(pl.col("category") == "listing").height
    assert result["correct"] == listings and len(result["misses"]) == labelled.height - listings
    with pytest.raises(ValueError, match="unknown label 'rumour'"):
        evaluate(labelled.with_columns(category=pl.lit("rumour")))


def test_the_simulators_announcements_are_read_to_the_minute():
    sim = simulate_announcements(datetime(2026, 1, 3, tzinfo=UTC), hours=24 * 7)
    main = main_events(extract_frame(sim.documents))
    scored = sim.truth.join(main, on="doc_id", how="left", suffix="_read")
    assert scored.height > 40
    assert (scored["event_type_read"] == scored["event_type"]).mean() >= 0.95
    assert (scored["effective_start"] == scored["start"]).mean() >= 0.95
    ends_match = (scored["effective_end"] == scored["end"]) | (
        scored["effective_end"].is_null() & scored["end"].is_null()
    )
    assert ends_match.mean() >= 0.95


def test_an_upgrade_announcement_yields_the_upgrade_and_its_suspension():
    body = (
        "Binance will support the Cardano (ADA) network upgrade and hard fork. Binance will suspend deposits and "
        "withdrawals of ADA on the Cardano (ADA) network from 2026-05-04 09:55 (UTC). The upgrade will take place at "
        "2026-05-04 10:00 (UTC) and take about 2 hours. Deposits and withdrawals will reopen once the network is "
        "stable."
    )
    events = extract("d", "Binance Will Support the Cardano (ADA) Network Upgrade & Hard Fork", body, "binance")
    by_type = {e.event_type: e for e in events}
    assert events[0].event_type == "network_upgrade"
    assert [e.event_index for e in events] == list(range(len(events)))
    assert [e.confidence for e in events] == sorted((e.confidence for e in events), reverse=True)
    upgrade, suspension = by_type["network_upgrade"], by_type["deposit_withdrawal_suspension"]
    assert upgrade.confidence > suspension.confidence
    assert upgrade.effective_start == datetime(2026, 5, 4, 10, tzinfo=UTC)
    assert upgrade.effective_end == datetime(2026, 5, 4, 12, tzinfo=UTC)
    assert suspension.effective_start == datetime(2026, 5, 4, 9, 55, tzinfo=UTC)
    assert upgrade.assets == suspension.assets == ("ADA",) and upgrade.network == "Cardano (ADA)"


def test_two_upgrades_with_their_own_times_are_two_events():
    body = (
        "The MANTRA (OM) network upgrade will take place at 2026-02-01 08:00 (UTC). The MultiversX (EGLD) network "
        "upgrade will take place at 2026-02-03 17:00 (UTC)."
    )
    upgrades = [e for e in extract("d", "Binance Will Support Two Network Upgrades", body, "binance")]
    assert [(e.assets, e.effective_start.day) for e in upgrades] == [(("OM",), 1), (("EGLD",), 3)]


@pytest.mark.parametrize(
    ("title", "body", "expected"),
    [
        ("ETH deposits paused", "Deposits of Ether (ETH) have been paused. Withdrawals continue as normal.", "deposit"),
        ("Update", "Withdrawals of SOL on the Solana network are delayed while we investigate.", "withdrawal"),
        ("Update", "OKX will suspend DOT deposits and withdrawals to support a node change.", "deposit_withdrawal"),
        ("Update", "Sends and receives of AVAX are temporarily unavailable.", "deposit_withdrawal"),
        ("Update", "Deposits of ZKJ will be closed at noon, and withdrawals will remain available.", "deposit"),
    ],
)
def test_a_suspension_is_of_what_its_verb_stops(title, body, expected):
    assert _types(title, body)[0] == f"{expected}_suspension"


def test_a_negated_suspension_or_a_suspension_of_nothing_that_moves_is_no_event():
    body = "Deposits and withdrawals will not be suspended. Binance will suspend borrowing on Cross Margin."
    assert _types("Notice", body) == ["other"]


def test_maintenance_margin_is_not_maintenance():
    body = "Binance Futures will delist the XYZUSDT perpetual contract. Keep your Maintenance Margin above the limit."
    assert _types("Notice on XYZUSDT", body) == ["delisting"]


def test_assets_and_networks_as_announcements_name_them():
    delisting = extract(
        "d", "Binance Will Delist DEGO, DENT, TRU on 2026-04-28", "Trading ends at 03:00 UTC.", "binance"
    )
    assert delisting[0].assets == ("DEGO", "DENT", "TRU") and delisting[0].network is None
    pairs = extract("d", "New pairs", "Binance will list ESP/USDT, ESP/USDC and the ALPHAUSDT perpetual.", "binance")
    assert pairs[0].assets == ("ESP", "ALPHA")
    for chain, expected in [("BNB Smart Chain (BEP20)", "BNB Smart Chain (BEP20)"), ("Tron (TRC20)", "Tron (TRC20)")]:
        events = extract(
            "d", f"Wallet Maintenance for {chain}", "Maintenance starts at 2026-03-02 06:00 (UTC).", "binance"
        )
        assert events[0].network == expected
    solana = extract(
        "d",
        "Delayed sends",
        "Sends on the Solana network have been paused since 13:20 UTC on March 9, 2026.",
        "coinbase",
    )
    assert solana[0].network == "Solana"
    named = extract(
        "d", "Binance Will Delist MANTRA (OM)", "Listing Fee: 0 BNB. UTC and API are no tickers.", "binance"
    )
    assert named[0].assets == ("OM",)


def test_a_document_without_cues_is_one_other_event_with_low_confidence():
    events = extract("d", "Binance Completes Integration of Polygon for Card", "We are happy to share news.", "binance")
    assert [(e.event_type, e.event_index) for e in events] == [("other", 0)]
    assert events[0].confidence <= 0.5


def test_the_frame_meets_the_contract_and_round_trips_through_the_lake(tmp_path):
    documents = load_labelled(DATA / "binance_dev.jsonl", venue="binance").drop("category")
    frame = extract_frame(documents)
    assert frame.schema == pl.from_arrow(DOCUMENT_EVENTS.empty_table()).schema
    conform(frame, DOCUMENT_EVENTS, name="document_events", partition="test")
    assert set(frame.get_column("doc_id")) == set(documents.get_column("doc_id"))
    indices = frame.group_by("doc_id").agg(pl.col("event_index").sort(), top=pl.col("confidence").max())
    assert all(row == list(range(len(row))) for row in indices.get_column("event_index").to_list())
    first = frame.filter(pl.col("event_index") == 0).join(indices, on="doc_id")
    assert (first.get_column("confidence") == first.get_column("top")).all()
    assert set(frame.get_column("extractor")) == {EXTRACTOR} and set(frame.get_column("prompt_version")) == {
        RULES_VERSION
    }
    assert frame.get_column("model").null_count() == frame.height
    assert frame.equals(extract_frame(documents))  # deterministic
    lake = Lake(str(tmp_path))
    lake.write("document_events", frame, {"date": "2026-04-28"})
    back = lake.read("document_events")
    assert back.height == frame.height and back.get_column("assets").to_list() == frame.get_column("assets").to_list()


def test_a_documents_frame_without_a_needed_column_or_value_is_refused():
    with pytest.raises(ValueError, match=r"missing column.*body"):
        extract_frame(pl.DataFrame({"doc_id": ["a"], "source": ["binance"], "title": ["t"]}))
    nulls = pl.DataFrame({"doc_id": ["a", "b"], "source": ["binance", None], "title": ["t", "t"], "body": ["x", "y"]})
    with pytest.raises(ValueError, match=r"column 'source' is null in 1 row\(s\), first doc_id 'b'"):
        extract_frame(nulls)


def test_an_event_is_validated():
    ok = {"doc_id": "d", "event_index": 0, "venue": "binance", "event_type": "listing", "confidence": 0.5}
    ok |= {"extractor": "offline_rules", "prompt_version": "rules-1"}
    Event(**ok)
    later, earlier = datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    for bad in ({"event_type": "rumour"}, {"confidence": 1.5}, {"effective_start": later, "effective_end": earlier}):
        with pytest.raises(ValidationError):
            Event(**(ok | bad))
    with pytest.raises(ValidationError):
        Event(**(ok | {"effective_start": datetime(2026, 1, 1)}))  # a time without a zone is not UTC

"""``document_events`` as a user runs it: announcements ingested from files and simulated by the
hour, read by the embedded extractor into events that DuckDB joins back to their documents; a
second materialisation reads nothing; a changed file is read again, alone."""

import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import skimage
from PIL import Image

from arbiter.platform import models, sql
from arbiter.platform.enrich.entity_clusters import pairwise_scores
from arbiter.platform.enrich.evaluate import LABELLED_DIR
from arbiter.platform.enrich.image_classifier import OnnxClassifier
from arbiter.platform.enrich.product_pairs import load_pairs
from arbiter.platform.lake import Lake
from arbiter.platform.settings import Settings
from arbiter.runner import ingest_files, materialize_selection
from tests.platform.enrich.openai_loopback import OpenAILoopback

PRODUCTS = Path(__file__).parent / "data" / "products"
HOURS = "2026-03-02-09:00...2026-03-02-10:00"  # two simulated announcements, then none


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("ARBITER_LAKE", str(tmp_path / "lake"))
    return Settings.from_env()


def metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey("document_events"))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def checks(outcomes) -> list[str]:
    return [c for o in outcomes for c in (*o.failed_checks, *o.warned_checks)]


def test_document_events_reads_new_partitions_only(settings, tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    unseen = tmp_path / "unseen.jsonl"
    shutil.copy(LABELLED_DIR / "unseen.jsonl", unseen)
    binance = str(LABELLED_DIR / "binance_dev.jsonl")

    def ingest(path, **options) -> None:
        outcomes = ingest_files({str(path): [str(path)]}, options, settings=settings, instance=instance)
        assert all(o.success for o in outcomes)

    def materialize(selection, **kwargs) -> list:
        outcomes = materialize_selection(selection, settings=settings, instance=instance, **kwargs)
        assert all(o.success for o in outcomes)
        return outcomes

    ingest(binance, venue="binance")
    ingest(unseen)
    materialize("simulator_documents", partition=HOURS)
    lake = Lake(settings.lake)
    partitions = len(lake.partitions("documents"))

    assert checks(materialize("document_events")) == []
    first = metadata(instance)
    assert first["partitions_read"] == partitions == 4 and first["partitions_up_to_date"] == 0
    assert first["accuracy_binance_dev"] >= 0.95 and first["accuracy_unseen"] >= 0.95
    assert first["method"] == "offline_rules/rules-2"

    con = sql.connect(lake)
    docs = con.execute("select count(*) from documents").fetchall()[0][0]
    assert first["documents"] == docs and docs > 41 + 20  # both files and the simulated hour
    # Every document has exactly one main event, and it is the most confident of its events.
    main = con.sql(
        """select d.doc_id, d.source, e.venue, e.event_type, e.confidence,
                  max(all_e.confidence) as best, count(*) filter (where all_e.event_index = 0) as mains
           from documents d join document_events e on e.doc_id = d.doc_id and e.event_index = 0
           join document_events all_e on all_e.doc_id = d.doc_id
           group by all"""
    ).pl()
    assert main.height == docs and (main["mains"] == 1).all() and (main["confidence"] == main["best"]).all()
    assert (main["venue"] == main["source"]).all()  # each line's own venue, or --venue
    assert main.filter(pl.col("venue") == "binance").height == 41
    # The simulated announcements are read as the simulator wrote them.
    truth = con.sql("select doc_id, event_type from simulated_announcement_events").pl()
    read = truth.join(main.select("doc_id", read="event_type"), on="doc_id", how="left")
    assert read.height > 0 and (read["event_type"] == read["read"]).all()

    def versions() -> dict:
        return {tuple(p.items()): lake.version_of("document_events", p) for p in lake.partitions("document_events")}

    before = versions()
    materialize("document_events")
    again = metadata(instance)
    assert again["partitions_read"] == 0 and again["partitions_up_to_date"] == partitions
    assert {
        tuple(p.items()): lake.version_of("document_events", p) for p in lake.partitions("document_events")
    } == before

    # A new line in one file: that partition alone is read again.
    with unseen.open("a", encoding="utf-8") as f:
        record = {
            "venue": "okx",
            "category": "delisting",
            "title": "OKX to delist FOO",
            "body": "OKX will delist FOO/USDT.",
        }
        f.write(json.dumps(record) + "\n")
    assert all(o.success for o in ingest_files({str(unseen): [str(unseen)]}, {}, settings=settings, instance=instance))
    assert all(o.success for o in materialize_selection("document_events", settings=settings, instance=instance))
    changed = metadata(instance)
    assert changed["partitions_read"] == 1 and changed["partitions_up_to_date"] == partitions - 1
    assert "source changed" in changed["partitions"]
    foo = (
        sql.connect(lake).sql("select venue, event_type, assets from document_events where 'FOO' in assets").fetchall()
    )
    assert foo == [("okx", "delisting", ["FOO"])]


def test_document_events_through_a_model_endpoint(settings, tmp_path, monkeypatch):
    """With an endpoint configured the same asset reads through the openai client: labelled and
    ingested documents cost calls once; re-materialising makes none; a budget stops the calls and
    the run says how many documents wait."""
    with OpenAILoopback() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("ARBITER_LLM_MODEL", "loopback-model")
        monkeypatch.setenv("ARBITER_LLM_PRICES", "loopback-model=1.0/2.0")
        instance = dg.DagsterInstance.ephemeral()
        unseen = str(LABELLED_DIR / "unseen.jsonl")
        assert all(o.success for o in ingest_files({unseen: [unseen]}, {}, settings=settings, instance=instance))

        monkeypatch.setenv("ARBITER_LLM_BUDGET_USD", "0.001")
        assert all(o.success for o in materialize_selection("document_events", settings=settings, instance=instance))
        stopped = metadata(instance)
        assert stopped["pending"] > 0 and "budget was reached" in stopped["note"]
        assert stopped["usage"]["budget_exhausted"] == 1

        monkeypatch.delenv("ARBITER_LLM_BUDGET_USD")
        assert all(o.success for o in materialize_selection("document_events", settings=settings, instance=instance))
        first = metadata(instance)
        assert first["method"].startswith("openai/loopback-model/") and first["partitions"].count("incomplete") == 1
        assert first["pending"] == 0 and first["accuracy_unseen"] >= 0.95
        assert first["usage"]["cost_usd"] > 0 and first["usage"]["calls"] > 0
        calls = len(server.requests)

        assert all(o.success for o in materialize_selection("document_events", settings=settings, instance=instance))
        again = metadata(instance)
        assert len(server.requests) == calls and again["usage"].get("calls", 0) == 0  # the cache answered
        assert again["partitions_read"] == 0

        events = (
            sql.connect(Lake(settings.lake)).execute("select distinct extractor, model from document_events").fetchall()
        )
        assert events == [("openai", "loopback-model")]


def test_image_features_of_simulated_and_ingested_listings(settings, tmp_path):
    """The classifier is trained on the simulator's listings and stored as ONNX; image_features
    describes every picture or quarantines it with its reason, for the simulator's marketplaces
    and for a user's catalogue whose image_uri are file paths; a second run reads nothing."""
    instance = dg.DagsterInstance.ephemeral()
    assert all(o.success for o in materialize_selection("simulator_listings+", settings=settings, instance=instance))
    lake = Lake(settings.lake)
    stored = models.latest(lake, "image_classifier")
    assert stored is not None and stored.metrics["accuracy"] >= 0.7

    good = tmp_path / "astronaut.jpg"
    Image.fromarray(skimage.data.astronaut()).save(good, quality=90)
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:5000])  # truncated
    catalogue = tmp_path / "shopx.csv"
    catalogue.write_text(
        "listing_id,title,image_uri\n"
        f"a1,Astronaut poster,{good}\n"
        f"a2,Astronaut poster (damaged file),{tmp_path / 'cut.jpg'}\n"
        f"a3,Astronaut poster (no file),{tmp_path / 'gone.jpg'}\n"
        "a4,No picture at all,\n"
    )
    outcomes = ingest_files(
        {str(catalogue): [str(catalogue)]}, {"kind": "listings", "venue": "shopx"}, settings=settings, instance=instance
    )
    assert all(o.success for o in outcomes)
    assert all(o.success for o in materialize_selection("image_features", settings=settings, instance=instance))
    event = instance.get_latest_materialization_event(dg.AssetKey("image_features")).asset_materialization
    meta = {k: v.value for k, v in event.metadata.items()}
    assert meta["partitions_read"] == 1 and meta["partitions_up_to_date"] == 1  # the simulator's, read before

    con = sql.connect(lake)
    described = con.execute("select listing_id, class_label, format, width from image_features where venue = 'shopx'")
    assert described.fetchall() == [("a1", "colour_photo", "JPEG", 512)]
    rejected = con.execute(
        "select reason, field from quarantine where target = 'image_features' and partition like '%shopx%' order by 1"
    ).fetchall()
    assert rejected == [("missing_image", "image_uri"), ("truncated_image", "image")]
    version = OnnxClassifier(stored.artifact).version
    simulated = "select count(*) from {} where venue <> 'shopx'"
    described = con.execute(simulated.format("image_features") + " and classifier = ?", [version]).fetchall()[0][0]
    quarantined = con.execute(
        "select count(*) from quarantine where target = 'image_features' and source <> 'shopx'"
    ).fetchall()[0][0]
    assert described + quarantined == con.execute(simulated.format("listings")).fetchall()[0][0]
    reasons = con.execute("select distinct reason from quarantine where target = 'image_features'").fetchall()
    assert {"too_many_pixels", "not_an_image", "empty_image"} <= {r for (r,) in reasons}


def test_entity_clusters_of_two_ingested_catalogues(settings, tmp_path):
    """A user's two product tables (the Walmart-Amazon names pairs, never tuned on, split back into
    one catalogue per shop) go in through `arbiter ingest`; entity_clusters matches them across the
    two shops well enough (pairwise F1 at least 0.70 on the labelled pairs)."""
    instance = dg.DagsterInstance.ephemeral()
    pairs = load_pairs(PRODUCTS / "amazon_walmart_names.csv", ("shop_a", "shop_b"), listing_key="title")
    for venue, catalogue in pairs.listings.group_by("venue"):
        path = tmp_path / f"{venue[0]}.csv"
        catalogue.select("listing_id", "title", "brand", "price").write_csv(path)
        options = {"kind": "listings", "venue": venue[0]}
        assert all(
            o.success for o in ingest_files({str(path): [str(path)]}, options, settings=settings, instance=instance)
        )
    assert all(o.success for o in materialize_selection("entity_clusters", settings=settings, instance=instance))
    clusters = sql.connect(Lake(settings.lake)).sql("select venue, listing_id, cluster_id from entity_clusters").pl()
    assert clusters.height == pairs.listings.height
    scores = pairwise_scores(clusters, pairs.truth)
    assert scores["f1"] >= 0.70, scores

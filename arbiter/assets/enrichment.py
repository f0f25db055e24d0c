"""Enrichment: structured facts read from unstructured data, each step its own asset and resource.

``document_events`` and ``image_features`` read new ``documents`` / ``listings`` partitions only
(``platform.derived``); they write the lake themselves, partition by partition, so they depend on
the assets that write those tables without loading them. ``image_classifier`` is trained on the
simulator's labelled listings and stored, as ONNX, in the lake's ``models`` table.
"""

import hashlib
from datetime import timedelta

import dagster as dg
import polars as pl

from arbiter.assets.partitions import HOURLY
from arbiter.platform import models, sql
from arbiter.platform.enrich import derive_events, derive_image_features, evaluate
from arbiter.platform.enrich.cluster_tracking import stability
from arbiter.platform.enrich.entity_clusters import cluster_listings, pairwise_scores, product_pairs
from arbiter.platform.enrich.extraction import TARGET
from arbiter.platform.enrich.image_classifier import OnnxClassifier, train_onnx_classifier
from arbiter.platform.enrich.image_evaluate import evaluate_images
from arbiter.platform.enrich.image_features import image_features as describe_images
from arbiter.platform.enrich.image_features import image_records
from arbiter.platform.enrich.instrument_clusters import cluster_instruments
from arbiter.platform.lake import time_partition
from arbiter.platform.schema import INSTRUMENT_CLUSTERS
from arbiter.resources.enrichment import ClusterResource, ExtractorResource, ImageResource
from arbiter.resources.lake import LakeResource

DOCUMENT_SOURCES = [dg.AssetKey(k) for k in ("simulator_documents", "file_documents", "source_documents")]
MAIN_EVENT_TARGET = 0.95  # the floor for the main event's type on labelled announcements

DOCUMENT_CHECKS = [
    dg.AssetCheckSpec(
        "every_document_accounted",
        asset=TARGET,
        description="every document read has events, is quarantined with a reason, or waits for the next run",
    ),
    dg.AssetCheckSpec(
        "main_event_accuracy",
        asset=TARGET,
        description=f"the extractor names the main event's type of at least {MAIN_EVENT_TARGET:.0%} of the "
        "labelled announcements (and of the unseen ones)",
    ),
]


@dg.asset(
    name=TARGET,
    deps=DOCUMENT_SOURCES,
    group_name="enrichment",
    code_version="1",
    owners=["team:data-engineering"],
    check_specs=DOCUMENT_CHECKS,
    op_tags={"arbiter/stage": "enrichment"},
    description="The events announcements state (suspensions, maintenance, upgrades, listings, delistings), "
    "one row per event: venue, assets, network, type, effective window (UTC), confidence, and the extractor, "
    "model and prompt version that read them; event_index 0 is each document's main event. Mirrors the "
    "`documents` partitions and reads only new or changed ones; unreadable documents go to `quarantine` "
    "under target=document_events.",
)
def document_events(context: dg.AssetExecutionContext, lake: LakeResource, extractor: ExtractorResource):
    reader = extractor.extractor(lake.lake())
    report = derive_events.derive_events(lake.lake(), reader)
    for read in report.reads:
        context.log.info(
            f"{read.partition} ({read.reason}): {read.documents} documents -> {read.events} events, "
            f"{read.quarantined} quarantined, {read.pending} pending"
        )
    quality = evaluate.labelled_accuracy(lambda docs: reader.extract(docs, "labelled").events)
    totals = report.totals()
    yield dg.MaterializeResult(
        metadata={
            "method": report.method,
            "partitions_read": len(report.reads),
            "partitions_up_to_date": report.up_to_date,
            **totals,
            "quarantine_reasons": dg.MetadataValue.json(dict(report.quarantine_reasons)),
            "usage": dg.MetadataValue.json(dict(report.usage)),
            "note": _note(report),
            **{f"accuracy_{name}": figures["accuracy"] for name, figures in quality.items()},
            "partitions": dg.MetadataValue.md(_table(report)),
        }
    )
    unaccounted = report.unaccounted()
    yield dg.AssetCheckResult(
        check_name="every_document_accounted",
        passed=not unaccounted,
        metadata={"unaccounted": dg.MetadataValue.json(unaccounted), **totals},
    )
    yield dg.AssetCheckResult(
        check_name="main_event_accuracy",
        passed=all(f["accuracy"] is not None and f["accuracy"] >= MAIN_EVENT_TARGET for f in quality.values()),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            name: dg.MetadataValue.json({k: f[k] for k in ("accuracy", "documents", "by_label")})
            for name, f in quality.items()
        },
    )


def _note(report: derive_events.DerivedEvents) -> str:
    """What a reader of the run should know first: whether anything waits for the next run, and why."""
    pending = report.totals()["pending"]
    if not pending:
        return "every document read"
    why = "the run's budget was reached" if report.usage.get("budget_exhausted") else "the endpoint kept failing"
    return f"{pending} document(s) wait for the next run: {why}"


def _table(report: derive_events.DerivedEvents) -> str:
    rows = [
        f"| {r.partition} | {r.reason} | {r.documents} | {r.events} | {r.quarantined} | {r.pending} |"
        for r in report.reads
    ]
    head = "| partition | why read | documents | events | quarantined | pending |\n|---|---|---|---|---|---|"
    return "\n".join([head, *rows]) if rows else "every partition was up to date"


CLASSIFIER = "image_classifier"
LISTING_SOURCES = [dg.AssetKey(k) for k in ("simulator_listings", "file_listings", "source_listings")]
ACCURACY_FLOOR = 0.7  # held-out accuracy below which the classifier check warns (measured: 0.72-0.77)


@dg.asset(
    name=CLASSIFIER,
    deps=["simulator_listings", "simulator_listing_images", "simulated_listing_truth"],
    group_name="enrichment",
    code_version="1",
    owners=["team:quant"],
    op_tags={"arbiter/stage": "enrichment"},
    check_specs=[
        dg.AssetCheckSpec(
            "held_out_accuracy",
            asset=CLASSIFIER,
            description=f"the classifier names the category of at least {ACCURACY_FLOOR:.0%} of the listings "
            "whose source photographs it never saw",
        )
    ],
    description="The picture classifier (category of a listing's picture, from its image embedding): "
    "logistic regression trained on the simulator's labelled listings, exported to ONNX and stored in the "
    "lake's `models` table, run with onnxruntime. Metadata: accuracy and near-duplicate precision/recall on "
    "listings whose source photographs were held out, per augmentation.",
)
def image_classifier(context: dg.AssetExecutionContext, lake: LakeResource, images: ImageResource):
    simulated = {"source": "simulator"}
    listings, pictures = lake.lake().read("listings", [simulated]), lake.lake().read("listing_images", [simulated])
    truth = lake.lake().read("simulated_listing_truth")
    by_uri = dict(zip(pictures["uri"], pictures["body"], strict=True))
    features, _ = describe_images(image_records(listings, by_uri), None, limits=images.limits(), workers=images.workers)
    quality = evaluate_images(features, truth, seed=images.seed)
    labelled = truth.filter(pl.col("defect").is_null())
    classifier = train_onnx_classifier(features, labelled)
    stored = models.save(
        lake.lake(),
        CLASSIFIER,
        classifier.model_bytes,
        trained_on={"listings": labelled.height, "images_sha256": _digest(pictures["sha256"])},
        metrics=quality,
    )
    context.log.info(f"image classifier {stored.version}: held-out accuracy {quality['accuracy']}")
    near = quality["near_duplicates"]
    yield dg.MaterializeResult(
        metadata={
            "version": classifier.version,
            "classes": ", ".join(classifier.classes),
            "trained_on_listings": labelled.height,
            "held_out_accuracy": quality["accuracy"],
            "near_duplicate_precision": near["precision"],
            "near_duplicate_recall": near["recall"],
            "accuracy_by_augmentation": dg.MetadataValue.json(quality["accuracy_by_augmentation"]),
            "near_duplicates_by_augmentation": dg.MetadataValue.json(quality["near_duplicates_by_augmentation"]),
        }
    )
    yield dg.AssetCheckResult(
        check_name="held_out_accuracy",
        passed=quality["accuracy"] >= ACCURACY_FLOOR,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"accuracy": quality["accuracy"], "floor": ACCURACY_FLOOR},
    )


def _digest(values: pl.Series) -> str:
    return hashlib.sha256("\n".join(sorted(values.to_list())).encode()).hexdigest()[:16]


@dg.asset(
    deps=[*LISTING_SOURCES, dg.AssetKey(CLASSIFIER)],
    group_name="enrichment",
    code_version="1",
    owners=["team:data-engineering"],
    op_tags={"arbiter/stage": "enrichment"},
    check_specs=[
        dg.AssetCheckSpec(
            "every_picture_accounted",
            asset="image_features",
            description="every listing with a picture was described or quarantined with a reason",
        )
    ],
    description="Per listing picture: size and format, perceptual hashes (pHash, dHash), colour histogram, "
    "edge and texture statistics, a fixed-length embedding, and the classifier's label and score (onnxruntime). "
    "Mirrors the `listings` partitions and describes only new or changed ones; pictures that cannot be read "
    "safely (too big, bombs, truncated, wrong type) go to `quarantine` under target=image_features.",
)
def image_features(context: dg.AssetExecutionContext, lake: LakeResource, images: ImageResource):
    stored = models.latest(lake.lake(), CLASSIFIER)
    if stored is None:
        raise dg.Failure(f"no {CLASSIFIER} in the lake's models table: materialise {CLASSIFIER} first")
    classifier = OnnxClassifier(stored.artifact)
    report = derive_image_features.derive_image_features(
        lake.lake(), classifier, images.store(lake.lake()), images.limits(), images.workers
    )
    totals = report.totals()
    described = totals["described"] + totals["quarantined"]
    yield dg.MaterializeResult(
        metadata={
            "method": report.method,
            "partitions_read": len(report.partitions),
            "partitions_up_to_date": report.up_to_date,
            **totals,
            "images_per_s": round(described / report.seconds, 1) if report.seconds and described else None,
            "quarantine_reasons": dg.MetadataValue.json(dict(report.reasons)),
            "unreadable_uris": dg.MetadataValue.json(dict(list(report.misses.items())[:20])),
        }
    )
    off = [p["partition"] for p in report.partitions if p["described"] + p["quarantined"] != p["pictured"]]
    yield dg.AssetCheckResult(
        check_name="every_picture_accounted", passed=not off, metadata={"partitions_off": dg.MetadataValue.json(off)}
    )


@dg.asset(
    deps=[*LISTING_SOURCES, dg.AssetKey("image_features"), dg.AssetKey("simulated_listing_truth")],
    group_name="enrichment",
    code_version="1",
    owners=["team:quant"],
    op_tags={"arbiter/stage": "enrichment"},
    check_specs=[
        dg.AssetCheckSpec(
            "every_listing_placed",
            asset="entity_clusters",
            description="every listing is in a cluster, is noise, or is quarantined with a reason",
        )
    ],
    description="Listings of different venues that are the same product: HDBSCAN over a sparse graph of "
    "cross-venue links scored on title embeddings (offline MiniLM), TF-IDF, stated facts (model code, "
    "quantity, colour, brand) and picture embeddings; cluster_id null for noise. Ids carry over from the "
    "previous run. Metadata: stability against the previous run and pairwise precision/recall/F1 against "
    "the simulator's truth.",
)
def entity_clusters(context: dg.AssetExecutionContext, lake: LakeResource, clustering: ClusterResource):
    store = lake.lake()
    listings = _newest(store.read("listings"), ["venue", "listing_id"], "ts")
    pictures = (
        _newest(store.read("image_features"), ["venue", "listing_id"]) if store.partitions("image_features") else None
    )
    previous = store.read("entity_clusters") if store.exists("entity_clusters") else None
    result = cluster_listings(listings, pictures, clustering.listings(), previous=previous, partition="all")
    store.write("quarantine", result.quarantine, {"target": "entity_clusters"})
    rows = result.rows
    clustered = rows.filter(pl.col("cluster_id").is_not_null())
    spans = clustered.group_by("cluster_id").agg(pl.col("venue").n_unique().alias("venues"))
    metadata = {
        "listings": listings.height,
        "clusters": spans.height,
        "cross_venue_clusters": spans.filter(pl.col("venues") > 1).height,
        "noise": rows.height - clustered.height,
        "quarantined": result.quarantine.height,
        "candidate_pairs": result.candidates,
        "links": result.links,
        "with_pictures": pictures is not None,
    }
    if previous is not None:
        moved = stability(rows, previous)
        metadata |= {f"stability_{k}": v for k, v in moved.items()}
    if store.exists("simulated_listing_truth"):
        truth = store.read("simulated_listing_truth").filter(pl.col("defect").is_null())
        scores = pairwise_scores(rows, product_pairs(truth))
        metadata |= {f"simulator_{k}": round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}
    yield dg.Output(rows, metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="every_listing_placed",
        passed=rows.height + result.quarantine.height == listings.height,
        metadata={"listings": listings.height, "placed": rows.height, "quarantined": result.quarantine.height},
    )


def _newest(frame: pl.DataFrame, key: list[str], by: str | None = None) -> pl.DataFrame:
    """One row per ``key``: a listing ingested twice (two files, two runs) counts once, the newest."""
    return (frame.sort(by) if by else frame).unique(key, keep="last", maintain_order=True)


@dg.asset(
    partitions_def=HOURLY,
    deps=[dg.AssetDep("quotes", partition_mapping=dg.TimeWindowPartitionMapping())],
    group_name="enrichment",
    code_version="1",
    owners=["team:quant"],
    op_tags={"arbiter/stage": "enrichment"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "markets_clustered",
            asset="instrument_clusters",
            description="at least one group of markets moves together in every hour with quotes",
        )
    ],
    description="Per hour, markets (venue, market, symbol, from every source's quotes) whose mid prices move "
    "together: HDBSCAN over rank correlations of returns on a common grid. Candidates for pair and basket "
    "arbitrage. Ids carry over from the hour before; metadata gives the grouping's stability against it "
    "(adjusted Rand, matched Jaccard).",
)
def instrument_clusters(context: dg.AssetExecutionContext, lake: LakeResource, clustering: ClusterResource):
    store = lake.lake()
    con = sql.connect(store)
    frames, stabilities, empty = {}, {}, []
    for key in context.partition_keys:
        window = HOURLY.time_window_for_partition_key(key)
        hour_before = window.start - timedelta(hours=1)
        previous = frames.get(HOURLY.get_partition_key_for_timestamp(hour_before.timestamp()))
        if previous is None and store.exists("instrument_clusters", time_partition(hour_before)):
            previous = store.read("instrument_clusters", [time_partition(hour_before)])
        quotes = (
            con.sql(
                "select ts, venue, market, symbol, bid, ask from quotes where epoch_ns(ts) >= ? and epoch_ns(ts) < ?",
                params=[int(window.start.timestamp()) * 10**9, int(window.end.timestamp()) * 10**9],
            ).pl()
            if "quotes" in store.tables()
            else pl.DataFrame()
        )
        if quotes.is_empty():
            empty.append(key)
            frames[key] = pl.DataFrame(schema=pl.from_arrow(INSTRUMENT_CLUSTERS.empty_table()).schema)
            continue
        result = cluster_instruments(quotes, clustering.instruments(), previous=previous, partition=key)
        store.write("quarantine", result.quarantine, {"target": "instrument_clusters", **time_partition(window.start)})
        frames[key] = result.rows.with_columns(window_start=pl.lit(window.start).dt.cast_time_unit("ns")).select(
            INSTRUMENT_CLUSTERS.names
        )
        if previous is not None and not previous.is_empty():
            stabilities[key] = stability(result.rows, previous, key=("venue", "market", "symbol"))
    groups = {
        key: frame.filter(pl.col("cluster_id").is_not_null())
        .group_by("cluster_id")
        .agg(pl.format("{}/{}/{}", "venue", "market", "symbol").sort().str.join(", "))
        .sort("cluster_id")
        .rows()
        for key, frame in frames.items()
    }
    yield dg.Output(
        frames,
        metadata={
            "hours": len(frames),
            "hours_without_quotes": len(empty),
            "stability": dg.MetadataValue.json(stabilities),
            "groups": dg.MetadataValue.json({k: [f"{c}: {m}" for c, m in g] for k, g in groups.items()}),
        },
    )
    unclustered = [k for k, g in groups.items() if not g and k not in empty]
    yield dg.AssetCheckResult(
        check_name="markets_clustered",
        passed=not unclustered,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"hours_without_groups": dg.MetadataValue.json(unclustered)},
    )

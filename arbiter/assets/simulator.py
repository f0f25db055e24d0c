"""Raw snapshots from the market simulator, and the ground truth of the arbitrage it injected; the
announcements and marketplace listings simulators, with theirs."""

import hashlib

import dagster as dg
import polars as pl

from arbiter.assets import table_checks
from arbiter.assets.partitions import HOURLY
from arbiter.platform.sources import announcements, listings_sim, simulator
from arbiter.resources.lake import SimulatorResource

CHECKS = [
    dg.AssetCheckSpec(
        "every_market_reports",
        asset="simulator_ticks",
        description="each simulated venue-market sent messages in every hour",
    ),
    dg.AssetCheckSpec(
        "windows_well_formed",
        asset="simulated_arbitrage",
        description="every window ends after it starts, within an hour, with a positive size",
    ),
]


@dg.multi_asset(
    outs={
        "simulator_ticks": dg.AssetOut(
            description="Raw simulator messages per hour, as the venues sent them: native symbols, decimal "
            "strings at each venue's precision, event time in the venue's unit (or none), receive time. "
            "Kept as received so any normalisation can be replayed.",
            code_version="1",
            owners=["team:data-engineering"],
        ),
        "simulated_arbitrage": dg.AssetOut(
            description="Ground truth: the dislocation windows the simulator injected (asset, venue, "
            "direction, size in bps). Real arbitrage windows to judge detectors and policies against.",
            code_version="1",
            owners=["team:data-engineering"],
        ),
    },
    group_name="ingestion",
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=CHECKS,
)
def simulator_snapshots(context: dg.AssetExecutionContext, simulator_settings: SimulatorResource):
    cfg = simulator_settings.config()
    hours = {key: simulate_hour_for(key, cfg) for key in context.partition_keys}
    yield dg.Output({k: h.raw for k, h in hours.items()}, output_name="simulator_ticks")
    yield dg.Output({k: h.truth for k, h in hours.items()}, output_name="simulated_arbitrage")

    expected = {(v.venue, v.market, v.native_symbol(a.base)) for v in cfg.venues for a in cfg.assets}
    silent = {}
    for key, hour in hours.items():
        present = set(hour.raw.select("venue", "market", "native_symbol").unique().cast(pl.String).iter_rows())
        if missing := sorted("/".join(m) for m in expected - present):
            silent[key] = missing
    yield dg.AssetCheckResult(
        asset_key="simulator_ticks",
        check_name="every_market_reports",
        passed=not silent,
        metadata={"silent_markets": dg.MetadataValue.json(silent)},
    )
    malformed = sum(
        h.truth.filter(
            (pl.col("end") <= pl.col("start"))
            | (pl.col("end") - pl.col("start") > pl.duration(hours=1))
            | (pl.col("magnitude_bps") <= 0)
        ).height
        for h in hours.values()
    )
    yield dg.AssetCheckResult(
        asset_key="simulated_arbitrage",
        check_name="windows_well_formed",
        passed=malformed == 0,
        metadata={"malformed": malformed, "windows": sum(h.truth.height for h in hours.values())},
    )


def simulate_hour_for(partition_key: str, cfg: simulator.SimulatorConfig) -> simulator.SimulatedHour:
    return simulator.simulate_hour(HOURLY.time_window_for_partition_key(partition_key).start, cfg)


@dg.multi_asset(
    outs={
        "simulator_documents": dg.AssetOut(
            description="Venue announcements the simulator published this hour (maintenance, deposit and "
            "withdrawal suspensions, listings, delistings), worded like real ones. Stored in the shared "
            "`documents` table under source=simulator.",
            code_version="1",
            owners=["team:data-engineering"],
            metadata={"lake/table": "documents", "lake/prefix": {"source": "simulator"}},
        ),
        "simulated_announcement_events": dg.AssetOut(
            description="Ground truth of each simulated announcement: venue, asset, network, event type and "
            "the stated window. What an extractor should recover from the documents.",
            code_version="1",
            owners=["team:data-engineering"],
        ),
    },
    group_name="ingestion",
    partitions_def=HOURLY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        table_checks.unique_spec("simulator_documents", "documents"),
        dg.AssetCheckSpec(
            "one_event_per_document",
            asset="simulated_announcement_events",
            description="every simulated document has exactly one ground-truth event",
        ),
    ],
)
def simulator_announcements(context: dg.AssetExecutionContext, simulator_settings: SimulatorResource):
    cfg = announcements.AnnouncementConfig(seed=simulator_settings.seed)
    hours = {
        key: announcements.simulate_announcements(HOURLY.time_window_for_partition_key(key).start, 1, cfg)
        for key in context.partition_keys
    }
    yield dg.Output({k: h.documents for k, h in hours.items()}, output_name="simulator_documents")
    yield dg.Output({k: h.truth for k, h in hours.items()}, output_name="simulated_announcement_events")
    yield table_checks.unique_result(
        "simulator_documents", "documents", pl.concat([h.documents for h in hours.values()], how="vertical_relaxed")
    )
    mismatched = {
        k: h.documents.height - h.truth.height
        for k, h in hours.items()
        if sorted(h.documents["doc_id"].to_list()) != sorted(h.truth["doc_id"].to_list())
    }
    yield dg.AssetCheckResult(
        asset_key="simulated_announcement_events",
        check_name="one_event_per_document",
        passed=not mismatched,
        metadata={
            "documents": sum(h.documents.height for h in hours.values()),
            "mismatched": dg.MetadataValue.json(mismatched),
        },
    )


@dg.multi_asset(
    outs={
        "simulator_listings": dg.AssetOut(
            description="The same products listed on several marketplaces (amazon, walmart, ebay, mercari): titles "
            "worded differently, prices with cross-marketplace gaps, and a photograph each, made different per "
            "marketplace (crop, resize, rotation, JPEG quality, colour shift, watermark), plus a few broken "
            "pictures. Stored in the shared `listings` table under source=simulator.",
            code_version="1",
            owners=["team:data-engineering"],
            metadata={"lake/table": "listings", "lake/prefix": {"source": "simulator"}},
        ),
        "simulator_listing_images": dg.AssetOut(
            description="The simulated listings' pictures, byte for byte, keyed by their image_uri. Stored in the "
            "shared `listing_images` table under source=simulator.",
            code_version="1",
            owners=["team:data-engineering"],
            metadata={"lake/table": "listing_images", "lake/prefix": {"source": "simulator"}},
        ),
        "simulated_listing_truth": dg.AssetOut(
            description="Ground truth of each simulated listing: its product, category, source photograph, the "
            "augmentations its picture went through, whether it is the underpriced one, and any planted defect.",
            code_version="1",
            owners=["team:data-engineering"],
        ),
    },
    group_name="ingestion",
    check_specs=[
        table_checks.unique_spec("simulator_listings", "listings"),
        dg.AssetCheckSpec(
            "every_picture_stored",
            asset="simulator_listing_images",
            description="every listing's image_uri has its picture stored",
        ),
        dg.AssetCheckSpec(
            "one_truth_per_listing", asset="simulated_listing_truth", description="every listing has one truth row"
        ),
    ],
)
def simulator_listings(simulator_settings: SimulatorResource):
    simulated = listings_sim.simulate_listings(simulator_settings.seed, bad_images=True)
    images = pl.DataFrame(
        {"uri": list(simulated.images), "body": list(simulated.images.values())},
        schema={"uri": pl.String, "body": pl.Binary},
    ).with_columns(sha256=pl.Series([hashlib.sha256(b).hexdigest() for b in simulated.images.values()]))
    yield dg.Output(simulated.listings, output_name="simulator_listings")
    yield dg.Output(images.select("uri", "sha256", "body"), output_name="simulator_listing_images")
    yield dg.Output(simulated.truth, output_name="simulated_listing_truth")
    yield table_checks.unique_result("simulator_listings", "listings", simulated.listings)
    unstored = set(simulated.listings["image_uri"].drop_nulls()) - set(simulated.images)
    yield dg.AssetCheckResult(
        asset_key="simulator_listing_images",
        check_name="every_picture_stored",
        passed=not unstored,
        metadata={"unstored": len(unstored), "pictures": images.height},
    )
    keys = ["venue", "listing_id"]
    matched = simulated.truth.select(keys).sort(keys).equals(simulated.listings.select(keys).sort(keys))
    yield dg.AssetCheckResult(
        asset_key="simulated_listing_truth",
        check_name="one_truth_per_listing",
        passed=matched,
        metadata={"listings": simulated.listings.height, "truth_rows": simulated.truth.height},
    )

"""Enrichment: structured facts read from unstructured data, each step its own asset and resource.

``document_events`` reads new ``documents`` partitions only (``platform.enrich.derive_events``);
it writes the lake itself, partition by partition, so it depends on the documents assets without
loading them.
"""

import dagster as dg

from arbiter.platform.enrich import derive_events, evaluate
from arbiter.platform.enrich.extraction import TARGET
from arbiter.resources.enrichment import ExtractorResource
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

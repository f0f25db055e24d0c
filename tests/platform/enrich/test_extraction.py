"""The offline extractor in the ``Extractor`` shape: a document it cannot read is quarantined with
the reason and the document as JSON, and the other documents of the batch are still read."""

import json

import polars as pl

from arbiter.platform.enrich.extraction import OfflineExtractor, quarantined_doc_ids


def test_a_document_without_text_is_quarantined_and_the_rest_read():
    documents = pl.DataFrame(
        {
            "doc_id": ["good", "empty"],
            "source": ["okx", "okx"],
            "title": ["OKX will delist FOO", None],
            "body": ["OKX will delist FOO/USDT on 2026-01-02 10:00 UTC.", None],
        }
    )
    extraction = OfflineExtractor().extract(documents, "source=files/file=x.jsonl")
    assert extraction.events.select("doc_id", "event_type").rows() == [("good", "delisting")]
    row = extraction.quarantine.row(0, named=True)
    assert row["target"] == "document_events" and row["partition"] == "source=files/file=x.jsonl"
    assert row["reason"].startswith("extract_failed: ") and json.loads(row["raw"])["doc_id"] == "empty"
    assert quarantined_doc_ids(extraction.quarantine) == ["empty"]
    assert extraction.complete and extraction.unaccounted(documents) == []

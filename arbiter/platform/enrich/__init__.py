"""Enrichment: structured facts read from unstructured data.

``document_events`` (the contract's ``DOCUMENT_EVENTS``): the events announcements state, one row
per event. ``offline_extract`` reads them by rules (the embedded default, no model, no network);
``evaluate`` scores any extractor on labelled announcements. Modules: ``events`` (the ``Event``
model and frame), ``cues`` (event phrases), ``stated_times`` (times and durations in text),
``names`` (tickers and networks).
"""

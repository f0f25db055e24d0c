"""Enrichment: structured facts read from unstructured data.

Documents into ``document_events`` (the contract's ``DOCUMENT_EVENTS``, one row per event an
announcement states): ``extraction`` (what every extractor returns), ``offline_extract`` (rules:
the embedded default, no model, no network, with ``events``, ``cues``, ``stated_times`` and
``names``), ``model_extract`` (a language model through the openai SDK, with ``prompt`` and
``answer_cache``), ``derive_events`` (new partitions only) and ``evaluate`` (accuracy on the
``labelled`` announcements).

Pictures into ``image_features``: ``images`` (safe decoding), ``image_features`` (hashes,
histogram, edges, texture, embedding), ``image_classifier`` (trained, exported to ONNX, run with
onnxruntime), ``image_matching`` (near duplicates across venues), ``image_evaluate`` (held-out
figures), ``image_store`` (where pictures come from) and ``derive_image_features``.

Clusters: ``entity_clusters`` (listings that are the same product, over ``text_features`` and
picture embeddings; ``product_pairs`` reads labelled pair files), ``instrument_clusters``
(markets that move together) and ``cluster_tracking`` (stable ids, stability between runs).
"""

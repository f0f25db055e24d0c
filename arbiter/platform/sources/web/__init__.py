"""Web pages and announcement feeds: text normalisation, HTML extraction, feed readers, the crawler.

The adapter itself (``recognise``/``parse``) is ``arbiter.platform.sources.web_pages``.
"""

"""``document_events`` read by a language model behind any OpenAI-compatible endpoint.

One request per distinct document (title and body), through the ``openai`` SDK's chat completions
with a strict JSON schema as ``response_format`` and no tools (``prompt``); at most
``max_concurrency`` requests in flight. What can happen to a document:

- answered: the answer passes ``Answer`` and ``Event`` validation; its events become rows, ranked
  by confidence (``event_index`` 0 is the main event), with ``doc_id`` and ``venue`` from our own
  document row, never from the model;
- an invalid answer (not JSON, against the schema, an impossible window, cut off at the token
  limit) or a refusal is asked once more; a second bad answer quarantines the document with the
  reason (``model_invalid: ...``, ``model_refused: ...``) and the offending field;
- a request the endpoint rejects for this document (HTTP 400/413/422: too long, say) is
  quarantined as ``model_rejected_request: ...``, and not cached: the next run asks again;
- 429, 5xx, timeouts and broken connections are retried by the SDK (``max_retries``, exponential
  backoff with jitter, honouring ``Retry-After``); a request that still fails leaves its documents
  ``failed``: neither events nor quarantine, asked again next run;
- 401/403/404 (a wrong key, an unknown model) would fail every document alike: the run stops with
  ``ModelEndpointError``, after keeping the answers it already paid for;
- once the run's spend reaches ``budget_usd`` no further request starts and the remaining
  documents are ``pending``: neither events nor quarantine, read by a later run. Requests already
  in flight finish, so the spend can pass the budget by at most ``max_concurrency`` requests.

The SDK's own retries are used rather than tenacity's: they already know which statuses and
errors are worth retrying, honour ``Retry-After``/``retry-after-ms`` and ``x-should-retry``, and
reuse the request; the answer-level retry (one more request after a bad answer) is ours, since no
transport layer can know an answer is bad.

Answers and rejections are cached by (document hash, model, prompt version) (``answer_cache``), so
unchanged documents, quarantined ones included, cost nothing when read again.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
import polars as pl
from pydantic import ValidationError

from arbiter.platform.enrich.answer_cache import AnswerCache, AnswerKey, CachedAnswer, InMemoryAnswerCache
from arbiter.platform.enrich.evaluate import labelled_accuracy
from arbiter.platform.enrich.events import Event, events_frame
from arbiter.platform.enrich.extraction import EMPTY_QUARANTINE, Extraction, quarantine_documents
from arbiter.platform.enrich.prompt import PROMPT_VERSION, RESPONSE_FORMAT, Answer, document_hash, messages

EXTRACTOR = "openai"  # the API the events were read through; ``model`` names the model behind it
DEFAULT_MODEL = "gpt-4o-mini"
MAX_CONCURRENCY = 64
DOCUMENT_COLUMNS = ("doc_id", "source", "title", "body")
REASON_CHARS = 300  # of an error message kept in a quarantine reason


class Price(NamedTuple):
    """USD per million tokens."""

    input_per_m: float
    output_per_m: float


# OpenAI's list prices as published in 2025 (USD per 1M input / output tokens); ARBITER_LLM_PRICES
# adds or replaces entries. A model missing here has no cost figure and cannot run with a budget.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
}


class ModelConfigError(ValueError):
    """A language-model setting is missing or wrong; the message names the setting."""


class ModelEndpointError(RuntimeError):
    """The endpoint refuses every request alike (wrong key, unknown model): no document can be read."""


@dataclass(frozen=True)
class ModelSettings:
    """How to reach the model and what a run may spend. ``api_key`` never appears in a repr."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model: str = DEFAULT_MODEL
    prompt_version: str = PROMPT_VERSION
    max_concurrency: int = 4
    timeout_s: float = 60.0
    max_retries: int = 3  # SDK retries of one request on 429, 5xx, timeouts and connection errors
    max_output_tokens: int = 2048
    temperature: float | None = 0.0  # None: the endpoint's default (reasoning models accept no other)
    prices: Mapping[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    budget_usd: float | None = None  # per run; None: no limit

    def __post_init__(self) -> None:
        checks = {
            "max_concurrency": 1 <= self.max_concurrency <= MAX_CONCURRENCY,
            "timeout_s": self.timeout_s > 0,
            "max_retries": 0 <= self.max_retries <= 10,
            "max_output_tokens": self.max_output_tokens > 0,
            "budget_usd": self.budget_usd is None or self.budget_usd >= 0,
            "model": bool(self.model),
            "prompt_version": bool(self.prompt_version),
        }
        for name, ok in checks.items():
            if not ok:
                raise ModelConfigError(f"language model setting {name}={getattr(self, name)!r} is out of range")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelSettings:
        """Settings from ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` and the ``ARBITER_LLM_*`` variables
        (``MODEL``, ``PROMPT_VERSION``, ``MAX_CONCURRENCY``, ``TIMEOUT_S``, ``MAX_RETRIES``,
        ``MAX_OUTPUT_TOKENS``, ``TEMPERATURE`` (``none`` to omit), ``BUDGET_USD``, ``PRICES`` as
        ``model=input/output,...`` in USD per 1M tokens). Raises ``ModelConfigError`` naming the
        variable that does not parse."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def number(name: str, default: float | None, kind: Callable[[str], Any] = float) -> Any:
            raw = get(name)
            if raw is None:
                return default
            try:
                return kind(raw)
            except ValueError as exc:
                raise ModelConfigError(f"setting {name}={raw!r} is not a number") from exc

        temperature = get("ARBITER_LLM_TEMPERATURE")
        return cls(
            base_url=get("OPENAI_BASE_URL"),
            api_key=get("OPENAI_API_KEY"),
            model=get("ARBITER_LLM_MODEL") or DEFAULT_MODEL,
            prompt_version=get("ARBITER_LLM_PROMPT_VERSION") or PROMPT_VERSION,
            max_concurrency=number("ARBITER_LLM_MAX_CONCURRENCY", 4, int),
            timeout_s=number("ARBITER_LLM_TIMEOUT_S", 60.0),
            max_retries=number("ARBITER_LLM_MAX_RETRIES", 3, int),
            max_output_tokens=number("ARBITER_LLM_MAX_OUTPUT_TOKENS", 2048, int),
            temperature=None if (temperature or "").lower() == "none" else number("ARBITER_LLM_TEMPERATURE", 0.0),
            prices={**DEFAULT_PRICES, **parse_prices(get("ARBITER_LLM_PRICES") or "")},
            budget_usd=number("ARBITER_LLM_BUDGET_USD", None),
        )

    def configured(self) -> bool:
        """True when an endpoint is set (a base URL or a key): otherwise the offline rules read."""
        return bool(self.base_url or self.api_key)

    @property
    def price(self) -> Price | None:
        return self.prices.get(self.model)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """USD for the tokens at this model's price; None for a model without one."""
        if self.price is None:
            return None
        return (prompt_tokens * self.price.input_per_m + completion_tokens * self.price.output_per_m) / 1e6


def parse_prices(text: str) -> dict[str, Price]:
    """``model=input/output,...`` (USD per 1M tokens) as a price table."""
    prices = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, _, pair = item.rpartition("=")
        try:
            prices[model.strip()] = Price(*(float(x) for x in pair.split("/", 1)))
        except (TypeError, ValueError) as exc:
            raise ModelConfigError(f"setting ARBITER_LLM_PRICES: {item!r} is not model=input/output") from exc
        if not model.strip():
            raise ModelConfigError(f"setting ARBITER_LLM_PRICES: {item!r} names no model")
    return prices


@dataclass
class Usage:
    """What a run spent and how its documents ended. ``calls`` are requests we made (answer
    retries included), ``retries`` the extra attempts the SDK made inside them; the endpoint saw
    ``calls + retries`` requests."""

    calls: int = 0
    retries: int = 0
    answer_retries: int = 0  # calls repeated because the answer was invalid or refused
    cache_hits: int = 0  # documents answered from the cache
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    budget_exhausted: bool = False
    pending: list[str] = field(default_factory=list)  # doc_ids not attempted: the budget was reached
    failed: list[str] = field(default_factory=list)  # doc_ids whose request failed after retries
    last_error: str | None = None

    def counters(self) -> dict[str, int]:
        """The run's counts, as summary metadata and the ``Extraction``'s usage both report them."""
        return {
            "calls": self.calls,
            "retries": self.retries,
            "answer_retries": self.answer_retries,
            "cache_hits": self.cache_hits,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "failed": len(self.failed),
        }


@dataclass
class ModelRun:
    """A run's ``document_events`` rows, quarantine rows (``QUARANTINE`` columns) and usage."""

    events: pl.DataFrame
    quarantine: pl.DataFrame
    usage: Usage
    settings: ModelSettings
    documents: int
    spent_before_usd: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The run at a glance, for materialisation metadata (no secrets)."""
        u, s = self.usage, self.settings
        reasons = Counter(r.split(":", 1)[0] for r in self.quarantine.get_column("reason").to_list())
        summary = {
            "extractor": EXTRACTOR,
            "model": s.model,
            "prompt_version": s.prompt_version,
            "endpoint": _public(s.base_url),
            "documents": self.documents,
            "events": self.events.height,
            "quarantined": self.quarantine.height,
            "quarantine_reasons": dict(reasons),
            "pending": len(u.pending),
            **u.counters(),
            "cost_usd": None if u.cost_usd is None else round(u.cost_usd, 6),
            "budget_usd": s.budget_usd,
            "budget_exhausted": u.budget_exhausted,
        }
        notes = []
        if u.budget_exhausted:
            spent = self.spent_before_usd + (u.cost_usd or 0.0)
            notes.append(
                f"budget of {s.budget_usd} USD reached ({spent:.6f} USD spent this run): no further calls, "
                f"{len(u.pending)} document(s) pending for the next run"
            )
            summary["pending_doc_ids"] = u.pending[:20]
        if u.failed:
            notes.append(f"{len(u.failed)} document(s) failed after retries, read again next run: {u.last_error}")
            summary["failed_doc_ids"] = u.failed[:20]
        if u.cost_usd is None:
            notes.append(f"no price for model {s.model!r}: cost unknown (set ARBITER_LLM_PRICES)")
        summary["note"] = "; ".join(notes) or "every document read"
        return summary

    def extraction(self) -> Extraction:
        """The run as the ``Extractor`` protocol returns it: failed documents are pending too,
        since a later run reads them again."""
        u = self.usage
        counts = {
            **u.counters(),
            "budget_exhausted": int(u.budget_exhausted),
            **({"cost_usd": u.cost_usd} if u.cost_usd is not None else {}),
        }
        return Extraction(self.events, self.quarantine, pending=[*u.pending, *u.failed], usage=counts)


class ModelExtractor:
    """The ``Extractor`` protocol over ``extract_with_model``. One instance is one run: the budget
    covers every partition it reads."""

    def __init__(self, settings: ModelSettings, cache: AnswerCache) -> None:
        self.settings, self.cache = settings, cache
        self.method = f"{EXTRACTOR}/{settings.model}/{settings.prompt_version}"
        self.spent_usd = 0.0

    def extract(self, documents: pl.DataFrame, partition: str) -> Extraction:
        run = extract_with_model(documents, self.settings, self.cache, partition, spent_usd=self.spent_usd)
        self.spent_usd += run.usage.cost_usd or 0.0
        return run.extraction()


# one document's outcome -------------------------------------------------------------------------


@dataclass
class _Outcome:
    kind: str  # answered | rejected | unanswerable | invalid_document | failed | pending
    answer: Answer | None = None
    reason: str | None = None
    field: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def cached(self, key: AnswerKey) -> CachedAnswer | None:
        """What the cache keeps of it: answers and rejected answers, nothing else."""
        tokens = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
        if self.kind == "answered":
            return CachedAnswer(key, self.answer.model_dump_json(), **tokens)
        if self.kind == "rejected":
            return CachedAnswer(key, None, self.reason, self.field, **tokens)
        return None


class _BadAnswer(Exception):
    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason, self.field = reason, field


@dataclass
class _Run:
    settings: ModelSettings
    usage: Usage
    spent_before_usd: float
    slots: asyncio.Semaphore
    requests: int = 0

    def budget_reached(self) -> bool:
        budget = self.settings.budget_usd
        if budget is None:
            return False
        spent = self.settings.cost(self.usage.prompt_tokens, self.usage.completion_tokens) or 0.0
        return self.spent_before_usd + spent >= budget


def extract_with_model(
    documents: pl.DataFrame,
    settings: ModelSettings,
    cache: AnswerCache,
    partition: str,
    spent_usd: float = 0.0,
) -> ModelRun:
    """``document_events`` of ``documents`` (``doc_id``, ``source`` as the venue, ``title``,
    ``body``) read by ``settings.model``, in document order; quarantined documents, usage and cost.
    ``spent_usd`` is what the same run spent on earlier batches, counted against the budget.

    A document row without ``doc_id``, ``source`` or ``body`` is quarantined (``document_invalid``)
    without a call. Raises ``ValueError`` for a missing column, ``ModelConfigError`` when no
    endpoint is configured or a budget is set for a model without a price, ``ModelEndpointError``
    when the endpoint refuses every request (wrong key, unknown model).
    """
    missing = [c for c in DOCUMENT_COLUMNS if c not in documents.columns]
    if missing:
        raise ValueError(f"documents frame: missing column(s) {', '.join(missing)}")
    if not settings.configured():
        raise ModelConfigError("no language-model endpoint configured: set OPENAI_API_KEY and/or OPENAI_BASE_URL")
    if settings.budget_usd is not None and settings.price is None:
        raise ModelConfigError(
            f"ARBITER_LLM_BUDGET_USD is set but model {settings.model!r} has no price: add it to ARBITER_LLM_PRICES"
        )
    if not settings.api_key:
        raise ModelConfigError("OPENAI_API_KEY is not set (an endpoint without keys accepts any value)")
    rows = documents.select(DOCUMENT_COLUMNS).cast({"source": pl.String}).rows(named=True)
    usage = Usage()
    problems: dict[int, tuple[str, str]] = {}  # row index -> (reason, field) of rows we cannot send
    keys: list[AnswerKey | None] = []
    for i, row in enumerate(rows):
        bad = next((c for c in ("doc_id", "source", "body") if not row[c]), None)
        if bad is not None:
            problems[i] = (f"document_invalid: {bad} is missing or empty", bad)
            keys.append(None)
        else:
            keys.append(AnswerKey(document_hash(row["title"], row["body"]), settings.model, settings.prompt_version))
    first_row: dict[AnswerKey, dict[str, Any]] = {}
    for key, row in zip(keys, rows, strict=True):
        if key is not None:
            first_row.setdefault(key, row)
    outcomes = _from_cache(cache.get(list(first_row)), first_row, settings)
    usage.cache_hits = sum(1 for key in keys if key in outcomes)
    fresh: dict[AnswerKey, _Outcome] = {}
    todo = [(key, row) for key, row in first_row.items() if key not in outcomes]
    try:
        if todo:
            run = _Run(settings, usage, spent_usd, asyncio.Semaphore(settings.max_concurrency))
            _run_coroutine(_ask_all(todo, run, fresh))
    finally:
        cache.put([c for key, o in fresh.items() if (c := o.cached(key)) is not None])
    usage.cost_usd = settings.cost(usage.prompt_tokens, usage.completion_tokens)
    events, quarantine = _assemble(documents, rows, keys, problems, {**outcomes, **fresh}, usage, settings, partition)
    return ModelRun(events, quarantine, usage, settings, len(rows), spent_usd)


def _assemble(
    documents: pl.DataFrame,
    rows: list[dict[str, Any]],
    keys: list[AnswerKey | None],
    problems: dict[int, tuple[str, str]],
    outcomes: dict[AnswerKey, _Outcome],
    usage: Usage,
    settings: ModelSettings,
    partition: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Events and quarantine rows in document order; documents left unread are noted in ``usage``."""
    events: list[Event] = []
    quarantined: list[int] = []
    reasons: list[tuple[str, str | None]] = []
    for i, (key, row) in enumerate(zip(keys, rows, strict=True)):
        if key is None:
            outcome = _Outcome("invalid_document", reason=problems[i][0], field=problems[i][1])
        else:
            outcome = outcomes.get(key, _Outcome("pending"))
        if outcome.kind == "answered":
            events += _events(outcome.answer, row, settings)
        elif outcome.kind == "failed":
            usage.failed.append(row["doc_id"])
        elif outcome.kind == "pending":
            usage.pending.append(row["doc_id"])
        else:
            quarantined.append(i)
            reasons.append((outcome.reason, outcome.field))
    if not quarantined:
        return events_frame(events), EMPTY_QUARANTINE
    picked = documents.select(DOCUMENT_COLUMNS).cast({"source": pl.String})[quarantined]
    quarantine = quarantine_documents(picked, pl.Series([r for r, _ in reasons], dtype=pl.String), partition)
    quarantine = quarantine.with_columns(
        source=pl.col("source").fill_null("unknown"), field=pl.Series([f for _, f in reasons], dtype=pl.String)
    )
    return events_frame(events), quarantine


def _from_cache(
    hits: dict[AnswerKey, CachedAnswer], rows: dict[AnswerKey, dict], settings: ModelSettings
) -> dict[AnswerKey, _Outcome]:
    """Outcomes of the cache hits. A cached answer that no longer passes the contract is left
    out, so it is asked again rather than trusted."""
    outcomes = {}
    for key, hit in hits.items():
        if hit.quarantined:
            outcomes[key] = _Outcome("rejected", reason=hit.reason or "model_invalid", field=hit.field)
            continue
        try:
            answer = Answer.model_validate_json(hit.answer)
            _events(answer, rows[key], settings)
        except ValidationError:
            continue
        outcomes[key] = _Outcome("answered", answer=answer)
    return outcomes


def _events(answer: Answer, row: dict[str, Any], settings: ModelSettings) -> list[Event]:
    """The answer's events as ``Event``s of ``row``'s document, most confident first (a stable
    sort: ties keep the model's order). Raises ``ValidationError`` if one breaks the contract."""
    ranked = sorted(answer.events, key=lambda e: -e.confidence)
    return [
        Event(
            doc_id=row["doc_id"],
            event_index=index,
            venue=row["source"],
            assets=tuple(dict.fromkeys(e.assets)),
            network=e.network,
            event_type=e.event_type,
            effective_start=e.effective_start,
            effective_end=e.effective_end,
            confidence=e.confidence,
            extractor=EXTRACTOR,
            model=settings.model,
            prompt_version=settings.prompt_version,
            brand=e.brand,
            product_model=e.product_model,
            variant=e.variant,
            condition=e.condition,
            quantity=e.quantity,
        )
        for index, e in enumerate(ranked)
    ]


# asking ----------------------------------------------------------------------------------------


def _run_coroutine(coroutine: Coroutine) -> None:
    """Run ``coroutine`` to completion, also from a thread that already runs an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


async def _ask_all(todo: list[tuple[AnswerKey, dict]], run: _Run, outcomes: dict[AnswerKey, _Outcome]) -> None:
    """Ask for every ``todo`` document, ``max_concurrency`` at a time, into ``outcomes`` (filled as
    answers arrive, so a run stopped by ``ModelEndpointError`` still caches what it paid for)."""
    settings = run.settings

    async def count_request(request: httpx2.Request) -> None:
        run.requests += 1

    http_client = openai.DefaultAsyncHttpxClient(event_hooks={"request": [count_request]})
    client = openai.AsyncOpenAI(
        api_key=settings.api_key,
        base_url=settings.base_url or "https://api.openai.com/v1",
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
        http_client=http_client,
    )
    try:
        async with client, asyncio.TaskGroup() as group:
            for key, row in todo:
                group.create_task(_settle(client, key, row, run, outcomes))
    except* ModelEndpointError as errors:
        raise errors.exceptions[0] from None
    finally:
        run.usage.retries = run.requests - run.usage.calls


async def _settle(
    client: openai.AsyncOpenAI, key: AnswerKey, row: dict, run: _Run, outcomes: dict[AnswerKey, _Outcome]
) -> None:
    """One document: ask, and ask once more after an invalid or refused answer."""
    async with run.slots:
        spent = [0, 0]
        bad: _BadAnswer | None = None
        for attempt in range(2):
            if run.budget_reached():
                run.usage.budget_exhausted = True
                outcomes[key] = _Outcome("pending")
                return
            if attempt:
                run.usage.answer_retries += 1
            try:
                completion = await _complete(client, row, run)
            except _Unavailable as exc:
                run.usage.last_error = str(exc)
                outcomes[key] = _Outcome("failed", reason=str(exc))
                return
            except _Unanswerable as exc:
                outcomes[key] = _Outcome("unanswerable", reason=str(exc))
                return
            if completion.usage is not None:
                tokens = (completion.usage.prompt_tokens or 0, completion.usage.completion_tokens or 0)
                run.usage.prompt_tokens += tokens[0]
                run.usage.completion_tokens += tokens[1]
                spent = [spent[0] + tokens[0], spent[1] + tokens[1]]
            try:
                answer = _validated(completion, row, run.settings)
            except _BadAnswer as exc:
                bad = exc
                continue
            outcomes[key] = _Outcome("answered", answer=answer, prompt_tokens=spent[0], completion_tokens=spent[1])
            return
        outcomes[key] = _Outcome("rejected", None, bad.reason, bad.field, *spent)


class _Unavailable(Exception):
    """The endpoint could not answer (429, 5xx, timeout, connection) after the SDK's retries."""


class _Unanswerable(Exception):
    """The endpoint rejected this document's request (400, 413, 422)."""


async def _complete(client: openai.AsyncOpenAI, row: dict, run: _Run) -> Any:
    settings = run.settings
    run.usage.calls += 1
    options: dict[str, Any] = {"temperature": settings.temperature} if settings.temperature is not None else {}
    try:
        return await client.chat.completions.create(
            model=settings.model,
            messages=messages(row["title"], row["body"]),
            response_format=RESPONSE_FORMAT,
            max_completion_tokens=settings.max_output_tokens,
            **options,
        )
    except openai.APIConnectionError as exc:  # timeouts included
        raise _Unavailable(f"{type(exc).__name__}: {exc}"[:REASON_CHARS]) from exc
    except openai.APIStatusError as exc:
        status = exc.status_code
        text = f"HTTP {status}: {_message(exc)}"[:REASON_CHARS]
        if status in (401, 403, 404):
            raise ModelEndpointError(
                f"language model endpoint {_public(settings.base_url)} (model {settings.model!r}) "
                f"refused the request: {text}"
            ) from exc
        if status in (408, 409, 429) or status >= 500:
            raise _Unavailable(text) from exc
        raise _Unanswerable(f"model_rejected_request: {text}") from exc


def _public(url: str | None) -> str:
    """An endpoint URL fit for logs and metadata: without user, password, query or fragment."""
    if not url:
        return "OpenAI default"
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"{host}:{parts.port}" if parts.port else host, parts.path, "", ""))


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        body = body.get("error", body)
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    return str(exc.message)


def _validated(completion: Any, row: dict, settings: ModelSettings) -> Answer:
    """The completion's answer, checked against ``Answer`` and the ``Event`` contract; raises
    ``_BadAnswer`` with the reason and the offending field."""
    if not completion.choices:
        raise _BadAnswer("model_invalid: no choice in the completion")
    choice = completion.choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise _BadAnswer(f"model_refused: {message.refusal}"[:REASON_CHARS])
    if choice.finish_reason == "content_filter":
        raise _BadAnswer("model_refused: stopped by the endpoint's content filter")
    if getattr(message, "tool_calls", None):
        raise _BadAnswer("model_invalid: a tool call, though no tools were offered")
    if choice.finish_reason == "length":
        raise _BadAnswer(f"model_invalid: answer cut off at max_completion_tokens={settings.max_output_tokens}")
    if not message.content:
        raise _BadAnswer("model_invalid: empty answer")
    try:
        answer = Answer.model_validate_json(message.content)
        _events(answer, row, settings)
    except ValidationError as exc:
        raise _BadAnswer(*_describe(exc)) from exc
    return answer


def _describe(exc: ValidationError) -> tuple[str, str | None]:
    """(reason, field) of a validation error's first problem."""
    error = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(part) for part in error["loc"]) or None
    if error["type"] == "json_invalid":
        return f"model_invalid: not JSON ({error['msg']})"[:REASON_CHARS], None
    detail = f"{where}: {error['msg']}" if where else error["msg"]
    count = exc.error_count()
    more = f" (and {count - 1} more)" if count > 1 else ""
    return f"model_invalid: {detail}{more}"[:REASON_CHARS], where


# quality ---------------------------------------------------------------------------------------


def model_accuracy(settings: ModelSettings | None = None, cache: AnswerCache | None = None) -> dict[str, Any] | None:
    """Event-type accuracy of the model's main event on the labelled announcements (the offline
    rules' figure, for the model), with calls and cost; None when no endpoint is configured.
    Settings default to ``ModelSettings.from_env()`` (the ``OPENAI_*`` and ``ARBITER_LLM_*``
    variables); the cache to a fresh in-memory one, so the figure measures the model now."""
    settings = settings or ModelSettings.from_env()
    if not settings.configured():
        return None
    cache = cache if cache is not None else InMemoryAnswerCache()
    runs: list[ModelRun] = []

    def extract(documents: pl.DataFrame) -> pl.DataFrame:
        runs.append(extract_with_model(documents, settings, cache, "labelled"))
        return runs[-1].events

    quality = labelled_accuracy(extract)
    costs = [r.usage.cost_usd for r in runs]
    return {
        "model": settings.model,
        "prompt_version": settings.prompt_version,
        **{f"accuracy_{name}": q["accuracy"] for name, q in quality.items()},
        **{f"documents_{name}": q["documents"] for name, q in quality.items()},
        "quarantined": sum(r.quarantine.height for r in runs),
        "unread": sum(len(r.usage.pending) + len(r.usage.failed) for r in runs),
        "calls": sum(r.usage.calls for r in runs),
        "cache_hits": sum(r.usage.cache_hits for r in runs),
        "prompt_tokens": sum(r.usage.prompt_tokens for r in runs),
        "completion_tokens": sum(r.usage.completion_tokens for r in runs),
        "cost_usd": None if None in costs else round(sum(costs), 6),
        "misses": {name: q["misses"] for name, q in quality.items()},
    }

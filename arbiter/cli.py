"""The ``arbiter`` command. Its commands and output shapes are a contract (see the README).

Progress and logs go to stderr, results to stdout; a failure exits non-zero with one line on
stderr that names what failed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import duckdb
from rich.console import Console
from rich.markup import escape

from arbiter.platform.lake import Lake, LakeError
from arbiter.platform.schema import SchemaMismatch
from arbiter.platform.settings import Settings
from arbiter.platform.sql import ReadOnlyViolation

err = Console(stderr=True)


def _settings(home: str | None, lake: str | None) -> Settings:
    """The environment's settings with ``--home``/``--lake`` applied, exported for child processes."""
    if home:
        os.environ["DAGSTER_HOME"] = home
    if lake:
        os.environ["ARBITER_LAKE"] = lake
    settings = Settings.from_env()  # resolves relative paths
    os.environ.update(ARBITER_LAKE=settings.lake, DAGSTER_HOME=str(settings.dagster_home))
    return settings


home_option = click.option("--home", help="Dagster home (default: $DAGSTER_HOME or ./.dagster).")
lake_option = click.option(
    "--lake", help="Lake root: a folder or s3://bucket/prefix (default: $ARBITER_LAKE or ./lake)."
)


# Everything the embedded defaults can build: file feeds wait for files to land, and network
# sources need the network (each has its schedule, stopped by default).
DEMO_SELECTION = "not (group:file_feeds or group:network_sources)"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """arbiter: cross-venue arbitrage on a lineage-tracked Parquet lake, orchestrated by Dagster."""


@cli.command()
@home_option
@lake_option
@click.option("--hours", type=int, default=None, help="Hours of history to build (default: $ARBITER_DEMO_HOURS or 6).")
def demo(home: str | None, lake: str | None, hours: int | None) -> None:
    """Build a demo history on the embedded defaults and print a summary."""
    from arbiter.instance import open_instance
    from arbiter.runner import materialize_selection

    settings = _settings(home, lake)
    if hours is not None:
        settings = dataclasses.replace(settings, demo_hours=hours)
    if settings.demo_hours < 1:
        raise click.BadParameter("must be at least 1", param_hint="--hours")
    instance = open_instance(settings.dagster_home)
    last = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = last - timedelta(hours=settings.demo_hours - 1)
    window = f"{first:%Y-%m-%d-%H:%M}...{last:%Y-%m-%d-%H:%M}"
    started = time.perf_counter()
    with err.status("starting") as status:
        outcomes = materialize_selection(
            DEMO_SELECTION,
            root_partition=window,
            settings=settings,
            instance=instance,
            on_run=lambda label: status.update(escape(f"materialising {label}")),
        )
    for o in outcomes:
        err.print(f"{'[green]ok[/]' if o.success else '[red]FAILED[/]'} {o.label}", highlight=False)
    _print_summary(settings, outcomes, time.perf_counter() - started)
    _fail_on_failed_runs(outcomes)


def _print_summary(settings: Settings, outcomes, seconds: float) -> None:
    from arbiter.platform import sql

    lake = Lake(settings.lake)
    con = sql.connect(lake)
    counts = {t: con.execute(f'select count(*) from "{t}"').fetchall()[0][0] for t in lake.tables()}
    failed = sorted({c for o in outcomes for c in o.failed_checks})
    warned = sorted({c for o in outcomes for c in o.warned_checks})
    width = max(map(len, counts), default=10)
    # As the user can type it: `.venv/bin/arbiter` after `make demo`, where no venv is activated.
    me = (
        os.path.relpath(sys.argv[0])
        if os.path.basename(sys.argv[0]) == "arbiter" and os.sep in sys.argv[0]
        else "arbiter"
    )
    lines = [f"arbiter demo: {len(outcomes)} runs in {seconds:.1f} s", "", "rows per table:"]
    lines += [f"  {t:<{width}}  {n:>12,}" for t, n in counts.items()]
    lines += [
        "",
        f"checks: {len(failed)} failed, {len(warned)} warning(s)"
        + (f" — failed: {', '.join(failed)}" if failed else "")
        + (f" — warning: {', '.join(warned)}" if warned else ""),
        f"lake:          {settings.lake}",
        f"dagster home:  {settings.dagster_home}",
        "",
        "next:",
        f'  {me} sql "select venue, market, symbol, count(*) from quotes group by all" --lake {settings.lake}',
        f"  {me} ui --home {settings.dagster_home} --lake {settings.lake}",
        f"  {me} catalog arbiter.duckdb --lake {settings.lake}",
    ]
    click.echo("\n".join(lines))


@cli.command()
@click.argument("selection")
@click.option("--partition", help="A partition key, or START...END for a range (one run per range).")
@home_option
@lake_option
def materialize(selection: str, partition: str | None, home: str | None, lake: str | None) -> None:
    """Materialise SELECTION (Dagster selection syntax) in this process, recorded in the instance."""
    from arbiter.instance import open_instance
    from arbiter.runner import materialize_selection

    settings = _settings(home, lake)
    instance = open_instance(settings.dagster_home)
    with err.status("starting") as status:
        outcomes = materialize_selection(
            selection,
            partition=partition,
            settings=settings,
            instance=instance,
            on_run=lambda label: status.update(escape(f"materialising {label}")),
        )
    if not outcomes:
        raise click.ClickException(f"nothing to materialise for {selection!r}: no upstream partitions in the lake")
    for o in outcomes:
        checks = f"  failed checks: {', '.join(o.failed_checks)}" if o.failed_checks else ""
        click.echo(f"{'ok' if o.success else 'FAILED'}  run {o.run_id}  {o.label}{checks}")
    _fail_on_failed_runs(outcomes)


def _fail_on_failed_runs(outcomes) -> None:
    failed = [o for o in outcomes if not o.success]
    if failed:
        first = failed[0]
        more = f" (and {len(failed) - 1} more failed runs)" if len(failed) > 1 else ""
        raise click.ClickException(f"run {first.run_id} ({first.label}) failed: {first.error}{more}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--venue", help="Venue of every row, where the file does not say (binance, kraken, ...).")
@click.option(
    "--kind", type=click.Choice(["quotes", "trades", "documents", "listings"]), help="What a generic file holds."
)
@click.option("--symbol", help="Market symbol, where the file does not say (BTC-USDT or the venue's own).")
@click.option("--market", type=click.Choice(["spot", "linear_perp", "inverse_perp", "future"]), help="Market type.")
@click.option(
    "--map", "column_map", help="Columns of a generic file: COLUMN=FIELD,... (COLUMN ours, FIELD the file's)."
)
@home_option
@lake_option
def ingest(paths, venue, kind, symbol, market, column_map, home, lake) -> None:
    """Ingest files (paths, folders or s3:// URIs): keep each as a raw snapshot, store its normalised
    rows and quarantine in the lake, and print one JSON summary (last line). Capture logs of one
    recording session given together (cryptofeed's `.ws.` and `.http.` files) are parsed together."""
    import json
    from collections import Counter

    from arbiter.instance import open_instance
    from arbiter.platform import ingest as ingesting
    from arbiter.platform.sources.files.landing import list_landing
    from arbiter.runner import ingest_files

    ingesting.IngestOptions.parse_map(column_map)  # a malformed --map fails before anything runs
    settings = _settings(home, lake)
    uris: list[str] = []
    for given in paths:
        path = Path(given).expanduser().resolve()
        if "://" in given or path.is_file():
            uris.append(given if "://" in given else str(path))
        elif path.is_dir():  # every file under it, as the landing folder is listed
            found = [entry.key for entry in list_landing(str(path))]
            if not found:
                raise click.BadParameter(f"no files under {given}", param_hint="PATH")
            uris += found
        else:
            raise click.BadParameter(f"no file at {given}", param_hint="PATH")
    partitions = ingesting.group(uris)
    options = {"venue": venue, "kind": kind, "symbol": symbol, "market": market, "column_map": column_map}
    with err.status("starting") as status:
        outcomes = ingest_files(
            partitions,
            {k: v for k, v in options.items() if v},
            settings=settings,
            instance=open_instance(settings.dagster_home),
            on_run=lambda label: status.update(escape(f"ingesting {label}")),
        )
    rows: dict[str, int] = {}
    for o in outcomes:
        for w in o.written:
            table = "raw_snapshots" if w["asset"] == "landed_file" else w["asset"].removeprefix("file_")
            rows[table] = rows.get(table, 0) + (w["rows"] or 0)
    parsed = [summary for o in outcomes for summary in o.reconciled]
    summary = {
        "files": sum(len(files) for files in partitions.values()),
        "sessions": {key: files for key, files in partitions.items() if len(files) > 1},
        "failed": [{"file": o.partitions, "error": o.error} for o in outcomes if not o.success],
        "rows": rows,
        # raw records = rows + quarantine + absorbed, over every table but raw_snapshots
        "raw_records": sum(p["raw_records"] for p in parsed),
        "absorbed": dict(sum((Counter(p["absorbed"]) for p in parsed), Counter())),
        "partitions": sorted(w["path"] for o in outcomes for w in o.written if w["path"]),
        "failed_checks": sorted({c for o in outcomes for c in o.failed_checks}),
    }
    click.echo(json.dumps(summary))
    _fail_on_failed_runs(outcomes)


@cli.command("sql")
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the result here (required for parquet).")
@lake_option
def sql_command(query: str, fmt: str, output: str | None, lake: str | None) -> None:
    """Run read-only SQL with DuckDB over a view per lake table (Hive keys are columns)."""
    from arbiter.platform import sql

    settings = _settings(None, lake)
    relation = sql.query(Lake(settings.lake), query)
    if relation is None:
        raise click.ClickException("the query returned no result set")
    frame = relation.pl()
    if fmt == "parquet":
        if not output:
            raise click.BadParameter("parquet needs --output FILE", param_hint="--output")
        frame.write_parquet(output)
    elif fmt in ("csv", "json"):
        text = frame.write_csv() if fmt == "csv" else frame.write_json()
        if output:
            Path(output).write_text(text)
        else:
            click.echo(text.rstrip("\n"))
    else:
        import polars as pl

        with pl.Config(
            tbl_rows=200, tbl_cols=50, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True
        ):
            rendered = str(frame)
        if output:
            Path(output).write_text(rendered + "\n")
        else:
            click.echo(rendered)


@cli.command()
@click.argument("path", default="arbiter.duckdb", type=click.Path(dir_okay=False))
@lake_option
def catalog(path: str, lake: str | None) -> None:
    """Write a DuckDB database of the lake's views (PATH, default ./arbiter.duckdb) for any DuckDB client."""
    from arbiter.platform import sql

    settings = _settings(None, lake)
    names = sql.write_catalog(Lake(settings.lake), path)
    click.echo(f"{path}: {len(names)} views ({', '.join(names)}) over {settings.lake}")


@cli.group()
def policy() -> None:
    """The RL policy's champion: its history, and rolling it back."""


@policy.command("history")
@lake_option
def policy_history(lake: str | None) -> None:
    """Every decision about the champion (first, promote, keep, rollback), oldest first."""
    from arbiter.platform.learning import registry

    settings = _settings(None, lake)
    decisions = registry.history(Lake(settings.lake))
    if decisions.is_empty():
        raise click.ClickException(f"no champion decisions in {settings.lake} yet: materialise champion_policy")
    for row in decisions.iter_rows(named=True):
        champion = row["champion_version"] or "-"
        click.echo(f"{row['decided_at']:%Y-%m-%d %H:%M:%S}  {row['action']:<8}  {champion:<12}  {row['reason']}")


@policy.command("rollback")
@click.option("--reason", default="rolled back by an operator", show_default=True, help="Recorded with the decision.")
@home_option
@lake_option
def policy_rollback(reason: str, home: str | None, lake: str | None) -> None:
    """Make the previous champion the champion again: one run of the rollback_champion job."""
    from arbiter.definitions import build_definitions
    from arbiter.instance import open_instance
    from arbiter.platform.learning import registry

    settings = _settings(home, lake)
    job = build_definitions(settings=settings).get_job_def("rollback_champion")
    result = job.execute_in_process(
        instance=open_instance(settings.dagster_home),
        run_config={"ops": {"restore_previous_champion": {"config": {"reason": reason}}}},
        raise_on_error=False,
    )
    if not result.success:
        failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error
        while failure.cause is not None:
            failure = failure.cause
        raise click.ClickException(" ".join(failure.message.split()))
    last = registry.history(Lake(settings.lake)).row(-1, named=True)
    click.echo(f"champion is {last['champion_version']} again (was {last['previous_version']}); run {result.run_id}")


@cli.command()
@click.option("--only", help="Comma-separated figure names (see benchmarks/README.md).")
def bench(only: str | None) -> None:
    """Run the benchmarks; one JSON object per figure on stdout."""
    from benchmarks import run_figures

    run_figures(only.split(",") if only else None)


@cli.command()
@home_option
@lake_option
@click.option("--port", type=int, default=3000, show_default=True)
def ui(home: str | None, lake: str | None, port: int) -> None:
    """Open the Dagster UI (and daemon) on this Dagster home and lake."""
    from arbiter.instance import ensure_home

    settings = _settings(home, lake)
    ensure_home(settings.dagster_home)
    # This interpreter's dagster, so the venv need not be activated.
    args = [sys.executable, "-m", "dagster", "dev", "-m", "arbiter.definitions", "-a", "defs"]
    args += ["-h", "127.0.0.1", "-p", str(port)]
    err.print(f"Dagster UI on http://127.0.0.1:{port} (home {settings.dagster_home}, lake {settings.lake})")
    os.execvp(args[0], args)


USER_ERRORS = (LakeError, SchemaMismatch, ReadOnlyViolation, duckdb.Error, ValueError, FileNotFoundError)


def main() -> None:
    # Dagster flags beta parameters (backfill_policy, ...) at import; users cannot act on that.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"arbiter: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code or 1)
    except USER_ERRORS as exc:
        message = " ".join(str(exc).split())
        click.echo(f"arbiter: {type(exc).__name__}: {message}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

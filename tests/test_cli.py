"""The command line contract: output shapes and one-line errors."""

import json
import shutil

import dagster as dg
import duckdb
import polars as pl

from tests.conftest import check_evaluations, run_arbiter


def test_sql_formats(demo, tmp_path):
    q = "select venue, count(*) as n from quotes group by venue order by venue"
    rows = json.loads(run_arbiter("sql", q, "--format", "json", env=demo.env).stdout)
    assert [r["venue"] for r in rows] == ["binance", "coinbase", "kraken"] and all(r["n"] > 0 for r in rows)
    csv = run_arbiter("sql", q, "--format", "csv", env=demo.env).stdout.splitlines()
    assert csv[0] == "venue,n" and len(csv) == 4
    out = tmp_path / "r.parquet"
    run_arbiter("sql", q, "--format", "parquet", "--output", str(out), env=demo.env)
    assert pl.read_parquet(out).to_dicts() == rows
    table = run_arbiter("sql", "select date, hour, count(*) from quotes group by all", env=demo.env).stdout
    assert "date" in table and "hour" in table


def test_errors_are_one_line_and_exit_non_zero(demo):
    for args, words in [
        (["sql", "select * from nowhere"], "nowhere"),
        (["sql", "delete from quotes"], "only queries are allowed"),
        (["materialize", "simulator_ticks"], "pass --partition"),
        (["materialize", "quotes", "--partition", "1999-01-01-00:00"], "partition '1999-01-01-00:00' does not exist"),
        (["materialize", "no_such_asset"], "no_such_asset"),
    ]:
        result = run_arbiter(*args, env=demo.env, check=False)
        assert result.returncode != 0, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("arbiter: ") and words in lines[0], (args, result.stderr)


def test_a_failed_run_is_one_line_naming_the_step_and_error(tmp_path):
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "ARBITER_LAKE": str(tmp_path / "empty_lake")}
    result = run_arbiter("materialize", "market_stats_daily", "--partition", "2026-11-01", env=env, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        next(line for line in result.stderr.splitlines() if line.startswith("arbiter: run "))
    ]
    assert "(market_stats_daily [2026-11-01]) failed: step market_stats_daily:" in result.stderr
    assert "quotes does not exist" in result.stderr


def test_materialize_follows_upstream_partitions_and_records_runs(demo, tmp_path):
    # On a copy: the shared demo history stays as the demo left it.
    home, lake = tmp_path / "home", tmp_path / "lake"
    shutil.copytree(demo.home, home)
    shutil.copytree(demo.lake, lake)
    env = {**demo.env, "DAGSTER_HOME": str(home), "ARBITER_LAKE": str(lake)}
    result = run_arbiter("materialize", "quotes", env=env)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ok  run ") and "..." in lines[0]  # both hours, one run
    run_id = lines[0].split()[2]
    assert dg.DagsterInstance.from_config(str(home)).get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS


def test_ingested_trades_of_a_market_missing_from_instruments_fail_the_check(demo, tmp_path):
    # On a copy, whose `instruments` holds the simulator's 12 markets (binance spot BTC-USDT among them).
    home, lake = tmp_path / "home", tmp_path / "lake"
    shutil.copytree(demo.home, home)
    shutil.copytree(demo.lake, lake)
    env = {**demo.env, "DAGSTER_HOME": str(home), "ARBITER_LAKE": str(lake)}
    known, unknown = (tmp_path / "known.csv").resolve(), (tmp_path / "unknown.csv").resolve()
    known.write_text("t,p,q,s\n2026-11-21T10:00:00Z,42000.1,0.25,BTC-USDT\n2026-11-21T10:00:01Z,3000.5,1,ETH-USDT\n")
    unknown.write_text(
        "t,p,q,s\n2026-11-21T10:00:00Z,0.31,100,DOGE-USDT\n2026-11-21T10:00:01Z,0.32,50,DOGE-USDT\n"
        "2026-11-21T10:00:02Z,42000.2,0.5,BTC-USDT\n"
    )
    flags = ["--venue", "binance", "--market", "spot", "--kind", "trades", "--map", "ts=t,price=p,size=q,symbol=s"]
    result = run_arbiter("ingest", str(known), str(unknown), *flags, env=env)  # a failed check fails no run
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rows"]["trades"] == 5 and summary["failed_checks"] == ["file_trades:no_unknown_markets"]

    evaluations = check_evaluations(dg.DagsterInstance.from_config(str(home)), "file_trades", "no_unknown_markets")
    by_file = {run.tags["dagster/partition"]: evaluation for run, evaluation in evaluations}
    assert by_file[str(known)].passed and by_file[str(known)].metadata["offending"].value == 0
    failed = by_file[str(unknown)]
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR
    assert failed.metadata["offending"].value == 2
    assert failed.metadata["by_partition"].value == {str(unknown): {"markets": 1, "binance/spot/DOGE-USDT": 2}}


def test_catalog_for_any_duckdb_client(demo, tmp_path):
    path = tmp_path / "arbiter.duckdb"
    run_arbiter("catalog", str(path), env=demo.env)
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("select count(*) from instruments").fetchall()[0][0] == 12

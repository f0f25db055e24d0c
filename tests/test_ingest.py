"""`arbiter ingest` on a recording session: cryptofeed capture logs of one exchange in one folder
are grouped into one partition, each file kept as its own raw snapshot, and parsed together, so a
Binance `.ws.` connection's order books start from the `.http.` REST snapshots recorded beside it.
Given alone, the same `.ws.` file parses as before and its depth diffs wait for a snapshot in vain."""

import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from arbiter.platform import ingest, sql
from arbiter.platform.lake import Lake
from arbiter.platform.sources import stream
from arbiter.platform.sources.stream.handler import NO_SNAPSHOT, WS_BOOK
from tests.conftest import run_arbiter

CF = Path(__file__).parent / "data" / "stream" / "captures_2021"
WS, HTTP, US = CF / "BINANCE.ws.1.0.gz", CF / "BINANCE.http.0.0.gz", CF / "BINANCE_US.ws.1.0.gz"
PARSED = ("quotes", "trades", "bars", "instruments", "documents", "listings", "quarantine")


def lines(path: Path) -> list[str]:
    return [line for line in gzip.decompress(path.read_bytes()).decode().splitlines() if line.strip()]


def depth_diffs(path: Path) -> int:
    return sum('"e":"depthUpdate"' in line for line in lines(path))


def locations(tmp_path: Path) -> tuple[str, ...]:
    return ("--home", str(tmp_path / "home"), "--lake", str(tmp_path / "lake"))


def ingest_cli(tmp_path: Path, *args: str) -> dict:
    result = run_arbiter("ingest", *args, *locations(tmp_path))
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["failed"] == []
    # Every raw record is a row, a quarantined record or absorbed for a stated reason.
    rows = sum(n for table, n in summary["rows"].items() if table in PARSED)
    assert rows + sum(summary["absorbed"].values()) == summary["raw_records"]
    return summary


def lake_sql(tmp_path: Path, query: str) -> pl.DataFrame:
    return sql.query(Lake(str(tmp_path / "lake")), query).pl()


def test_capture_logs_group_by_folder_and_exchange(tmp_path):
    folder = str(CF.resolve())
    uris = [str(p.resolve()) for p in sorted(CF.glob("*.gz"))]
    other = str(tmp_path / "BINANCE.ws.2.0.gz")  # the same exchange in another folder: another session
    plain = str(CF.parent / "binance_20240808" / "spot_btcusdt.gz")
    groups = ingest.group([*uris, uris[0], other, plain])
    assert groups == {
        f"{folder}/BINANCE.*": [f"{folder}/BINANCE.http.0.0.gz", f"{folder}/BINANCE.ws.1.0.gz"],
        f"{folder}/BINANCE_FUTURES.*": [f"{folder}/BINANCE_FUTURES.http.0.0.gz", f"{folder}/BINANCE_FUTURES.ws.1.0.gz"],
        f"{folder}/BINANCE_US.ws.1.0.gz": [f"{folder}/BINANCE_US.ws.1.0.gz"],  # alone: keyed by itself
        f"{folder}/COINBASE.*": [f"{folder}/COINBASE.0.gz", f"{folder}/COINBASE.ws.28.0.gz"],
        f"{folder}/KRAKEN.*": [
            f"{folder}/{n}" for n in ("KRAKEN.0.gz", "KRAKEN.ws.48.0.gz", "KRAKEN.ws.49.0.gz", "KRAKEN.ws.50.0.gz")
        ],
        other: [other],
        plain: [plain],
    }
    # A session key without its files (re-materialised from the UI) means every log of it in the folder.
    assert ingest.members(f"{folder}/KRAKEN.*") == groups[f"{folder}/KRAKEN.*"]
    assert ingest.members(plain) == [plain]
    with pytest.raises(ValueError, match=r"field .files.*BINANCE_US\.ws\.1\.0\.gz"):
        ingest.members(f"{folder}/BINANCE.*", [str(WS.resolve()), str(US.resolve())])
    with pytest.raises(FileNotFoundError, match="no capture log of this session"):
        ingest.members(str(tmp_path / "BINANCE.*"))


def test_a_session_in_a_folder_is_parsed_together(tmp_path):
    folder = tmp_path / "capture"
    folder.mkdir()
    for path in (WS, HTTP, US):  # Binance with its REST snapshots, and Binance.US recorded without any
        shutil.copyfile(path, folder / path.name)
    summary = ingest_cli(tmp_path, str(folder), "--market", "spot")

    session, alone = f"{folder}/BINANCE.*", f"{folder}/BINANCE_US.ws.1.0.gz"
    assert summary["files"] == 3
    assert summary["sessions"] == {session: [f"{folder}/{HTTP.name}", f"{folder}/{WS.name}"]}
    assert summary["raw_records"] == sum(len(lines(p)) for p in (WS, HTTP, US))

    # Each file is its own raw snapshot, byte for byte; the session's two share its partition.
    raw = lake_sql(tmp_path, "select file, origin, body, meta from raw_snapshots order by origin")
    assert raw.select("file", "origin").rows() == [
        (session, f"{folder}/{HTTP.name}"),
        (session, f"{folder}/{WS.name}"),
        (alone, f"{folder}/{US.name}"),
    ]
    assert raw["body"].to_list() == [HTTP.read_bytes(), WS.read_bytes(), US.read_bytes()]
    assert all(json.loads(meta)["market"] == "spot" for meta in raw["meta"])  # the option reached every file

    # Binance's books were synced from the .http. snapshots: ws_book quotes, nothing left waiting.
    quotes = lake_sql(tmp_path, "select file, venue, channel, count(*) n from quotes group by all")
    synced = quotes.filter(pl.col("channel") == WS_BOOK)
    assert synced.select("file", "venue").rows() == [(session, "binance")] and synced["n"].item() > 0
    quarantine = lake_sql(tmp_path, "select file, reason, count(*) n from quarantine group by all")
    assert quarantine.rows() == [(alone, NO_SNAPSHOT, depth_diffs(US))]  # Binance.US alone: every diff waits

    # The lake holds exactly what the summary counted.
    for table, n in summary["rows"].items():
        assert lake_sql(tmp_path, f"select count(*) from {table}").item() == n, table

    # Re-materialised without being told its files (as from the UI), the session re-reads its folder.
    run_arbiter("materialize", "landed_file+", "--partition", session, *locations(tmp_path))
    assert lake_sql(tmp_path, "select count(*) from raw_snapshots").item() == 3
    again = lake_sql(tmp_path, "select file, venue, channel, count(*) n from quotes group by all")
    assert again.sort(again.columns).equals(quotes.sort(quotes.columns))


def test_a_ws_log_alone_parses_as_before_and_its_diffs_wait_for_a_snapshot(tmp_path):
    summary = ingest_cli(tmp_path, str(WS), "--venue", "binance", "--market", "spot")
    assert summary["files"] == 1 and summary["sessions"] == {}
    assert summary["raw_records"] == len(lines(WS))

    quarantine = lake_sql(tmp_path, "select reason, file, raw from quarantine")
    assert set(quarantine["reason"]) == {NO_SNAPSHOT} and quarantine.height == depth_diffs(WS)
    assert set(quarantine["file"]) == {str(WS.resolve())}
    assert lake_sql(tmp_path, f"select count(*) from quotes where channel = '{WS_BOOK}'").item() == 0

    # The same rows as the capture adapter gives the file on its own.
    snapshot = ingest.read_snapshot(str(WS.resolve()), "files")
    expected = stream.parse(snapshot, str(WS.resolve()))
    assert {t: n for t, n in summary["rows"].items() if t != "raw_snapshots"} == expected.rows()
    assert summary["absorbed"] == dict(expected.absorbed)
    meta = json.loads(lake_sql(tmp_path, "select meta from raw_snapshots").item())
    assert (meta["venue"], meta["market"]) == ("binance", "spot")
    # A fresh lake holds no instruments: nothing can vouch for the quotes and trades, and the check
    # fails rather than passing on an empty reference.
    assert {"file_quotes:no_unknown_markets", "file_trades:no_unknown_markets"} <= set(summary["failed_checks"])

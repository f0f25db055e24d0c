"""DuckDB over the lake: a view per table, Hive keys as columns, read-only queries.

Views are globs, not file lists, so a catalog file written once keeps seeing new partitions. A
table whose partitions carry different Hive keys (``quarantine`` gathers rejects of differently
partitioned tables) becomes a ``UNION ALL BY NAME`` of one scan per key set. On S3, DuckDB's
httpfs extension cannot be downloaded here, so the lake's own pyarrow S3 filesystem is handed to
DuckDB through fsspec: one set of credentials and endpoint for writer and reader alike.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
from fsspec.implementations.arrow import ArrowFSWrapper

from arbiter.platform.lake import PART_FILE, Lake, parse_hive
from arbiter.platform.schema import CONTRACT

# Statement types a read-only session may run; everything else (COPY, INSERT, CREATE, ATTACH,
# SET, INSTALL, ...) is refused before execution.
READ_ONLY_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})


class ReadOnlyViolation(PermissionError):
    pass


class _S3ForDuckDB(ArrowFSWrapper):
    protocol = ("s3", "s3a")


def view_sql(lake: Lake, table: str, con: duckdb.DuckDBPyConnection) -> str | None:
    """``SELECT`` text of the view for ``table``, or None when it has no partition yet; ``con``
    reads the lake (it looks at a file's columns where a Hive key has a column's name)."""
    prefix = lake.table_dir(table) + "/"
    key_sets: list[tuple[str, ...]] = []
    for path in lake.files(table):
        keys = tuple(parse_hive(path[len(prefix) : -len(PART_FILE)]))
        if keys not in key_sets:
            key_sets.append(keys)
    columns = set(CONTRACT[table].names) if table in CONTRACT else set()
    scans = []
    for keys in key_sets:
        pattern = lake.uri_of(prefix + "".join(f"{k}=*/" for k in keys) + "part-*.parquet")
        hive = "true" if keys else "false"
        scan = f"read_parquet('{pattern}', hive_partitioning={hive}, union_by_name=true)"
        shadowed = columns.intersection(keys)
        if shadowed:  # DuckDB would show the path's value for a key that is also a column
            scan = _keys_beside_columns(con, scan, keys, shadowed)
        scans.append(f"SELECT * FROM {scan}")
    return "\nUNION ALL BY NAME\n".join(scans) if scans else None


def _keys_beside_columns(
    con: duckdb.DuckDBPyConnection, scan: str, keys: tuple[str, ...], shadowed: set[str]
) -> str:
    """``scan`` with the file's own columns where a Hive key has a column's name (``documents``
    are stored under ``source=<ingestion source>`` while their ``source`` column is the venue), and
    the other keys decoded and typed as DuckDB's Hive detection does."""
    detected = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
    plain = scan.replace("hive_partitioning=true", "hive_partitioning=false, filename=true")
    extra = "".join(
        f", CAST(url_decode(regexp_extract(filename, '/{k}=([^/]*)/', 1)) AS {detected[k]}) AS \"{k}\""
        for k in keys
        if k not in shadowed
    )
    return f"(SELECT * EXCLUDE (filename){extra} FROM {plain})"


def connect(lake: Lake, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per lake table (S3 lakes included)."""
    con = duckdb.connect(database)
    if not lake.is_local:
        con.register_filesystem(_S3ForDuckDB(lake.fs))
    for table in lake.tables():
        select = view_sql(lake, table, con)
        if select:
            con.execute(f'CREATE OR REPLACE VIEW "{table}" AS {select}')
    return con


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    for statement in con.extract_statements(query):
        kind = statement.type.name
        if kind not in READ_ONLY_STATEMENTS:
            raise ReadOnlyViolation(f"only queries are allowed here, not {kind}: {statement.query.strip()[:80]}")


def query(lake: Lake, sql: str) -> duckdb.DuckDBPyRelation | None:
    """Run read-only ``sql`` over the lake's views; the relation of its last statement."""
    con = connect(lake)
    check_read_only(con, sql)
    return con.sql(sql)


def write_catalog(lake: Lake, path: str | Path) -> list[str]:
    """Write a DuckDB database file holding the lake's views; returns the view names.

    Any DuckDB client opens it. For a local lake the views work as they are; for an S3 lake the
    client needs S3 access of its own (httpfs with credentials, or this module's ``connect``).
    """
    path = Path(path)
    path.unlink(missing_ok=True)
    con = connect(lake, str(path))
    names = [row[0] for row in con.execute("select view_name from duckdb_views() where not internal").fetchall()]
    con.close()
    return sorted(names)

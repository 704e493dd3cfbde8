"""Statements of the SQLite write path, compiled once and run on the driver's cursor.

SQLAlchemy's work around each execution (an execution context, parameter and result processing
through its generic machinery) costs five times what SQLite takes to run a small statement: about
100 µs against 20 µs for reading one incident. A storm runs such statements by the hundred
thousand, so on SQLite the transaction's statements are compiled once per set of parameter names
(`prepare`) and run on the same DBAPI connection, inside the same transaction; the column types'
own bind and result processors still convert every value (times to microseconds, JSON), so what
is stored and read back is what SQLAlchemy would store and read.

PostgreSQL keeps SQLAlchemy's execution: a network round trip dwarfs the cost, and its driver's
parameter casts are SQLAlchemy's business.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

Processor = Callable[[Any], Any] | None

# SQLite's limit on the parameters of one statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
SQLITE_MAX_VARIABLES = 32_766


@dataclass(frozen=True)
class Prepared:
    """One statement as SQLite text with its parameters in order, and how to convert values."""

    sql: str
    dialect: Dialect
    # (name, bound value of the statement itself, bind processor), in placeholder order.
    parameters: tuple[tuple[str, Any, Processor], ...]
    # The columns the statement returns (none for most writes), and their result processors.
    columns: tuple[str, ...]
    processors: tuple[Processor, ...]

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        # A list comprehension: a storm's inserts convert every value of every row here, and a
        # generator with a nested loop per value took half as long again.
        get = values.get
        return tuple(
            [
                get(name, own) if processor is None else processor(get(name, own))
                for name, own, processor in self.parameters
            ]
        )

    def rows(self, conn: Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows the statement returns (none for a statement without columns), converted."""
        return self._fetch(conn, self.sql, self.arguments(values))

    def mappings(self, conn: Connection, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows(conn, values)]

    def insert_rows(
        self, conn: Connection, rows: Sequence[Mapping[str, Any]]
    ) -> list[tuple[Any, ...]]:
        """An INSERT of every row, with what its RETURNING gives, in statements of many rows:
        the driver's executemany returns no rows, and one statement per row costs a round of
        the driver each."""
        # The VALUES list of a one-row INSERT, as SQLAlchemy writes it.
        one_row = "(" + ", ".join(["?"] * len(self.parameters)) + ")"
        if one_row not in self.sql:
            raise ValueError(f"not a one-row INSERT: {self.sql[:80]}")
        batch = max(1, SQLITE_MAX_VARIABLES // len(self.parameters))
        returned: list[tuple[Any, ...]] = []
        for first in range(0, len(rows), batch):
            chunk = rows[first : first + batch]
            sql = self.sql.replace(one_row, ", ".join([one_row] * len(chunk)), 1)
            arguments = tuple(value for row in chunk for value in self.arguments(row))
            returned += self._fetch(conn, sql, arguments)
        return returned

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run a statement without results once per row, in one executemany; rows changed."""
        cursor = _cursor(conn)
        try:
            cursor.executemany(self.sql, [self.arguments(row) for row in rows])
            return int(cursor.rowcount)
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(self.sql, rows, exc, self.dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()

    def _fetch(
        self, conn: Connection, sql: str, arguments: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, arguments)
            found = cursor.fetchall() if self.columns else []
        except self.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, arguments, exc, self.dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()
        if not any(self.processors):
            return [tuple(row) for row in found]
        return [
            tuple(
                processor(value) if processor is not None else value
                for processor, value in zip(self.processors, row, strict=True)
            )
            for row in found
        ]


def _cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def prepare(conn: Connection, statement: sa.Executable, keys: tuple[str, ...]) -> Prepared:
    """`statement` compiled for the SQLite database of `conn` with the parameter names `keys`
    (an INSERT's columns). The engine's dialect carries its JSON serializer (orjson)."""
    return _prepare(conn.dialect, statement, keys)


# Bounded: a test run makes many engines; a daemon has one, and about thirty statements.
@functools.lru_cache(maxsize=1024)
def _prepare(dialect: Dialect, statement: sa.Executable, keys: tuple[str, ...]) -> Prepared:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))  # type: ignore[attr-defined]
    if compiled.positiontup is None:
        raise ValueError(f"{dialect.name}: only positional parameters can be prepared")
    parameters = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        if bind.expanding:
            raise ValueError(f"{name}: an expanding parameter cannot be prepared")
        kind = bind.type.dialect_impl(dialect)
        own = bind.effective_value if bind.callable is None else bind.callable()
        parameters.append((name, own, kind.bind_processor(dialect)))
    returned = _returned(statement)
    return Prepared(
        str(compiled),
        dialect,
        tuple(parameters),
        columns=tuple(str(column.key) for column in returned),
        processors=tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned
        ),
    )


def _returned(statement: sa.Executable) -> Sequence[sa.ColumnElement[Any]]:
    if isinstance(statement, sa.Select):
        return list(statement.selected_columns)
    if isinstance(statement, sa.Insert | sa.Update | sa.Delete) and statement._returning:
        return list(statement.exported_columns)
    return []

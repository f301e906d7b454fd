"""Core statements compiled once per dialect and run on the driver's cursor (the ingest hot path).

Recording an instance runs the same four or five statements for every instance received.
Through the ORM session each costs a statement construction, a cache-key computation and the
ORM's result machinery, several times what the driver itself takes. :class:`Prepared` holds a
Core statement (written with :func:`~sqlalchemy.bindparam`), compiles it once per dialect, and
executes it on the DBAPI cursor of the session's own connection, in the session's transaction,
with the bind processors of its columns' types and the Python-side defaults of the columns an
INSERT leaves out (so a row is stored exactly as SQLAlchemy would store it: aware UTC
datetimes as naive UTC text on SQLite, for example). Only columns
read back as plain numbers and text may be selected (no result processing is done).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

__all__ = ["Prepared"]

_DRIVER = "worklist.ingest.statements.driver"


class _DefaultContext:
    """What a context-sensitive column default asks of SQLAlchemy's execution context.

    ``get_current_parameters()`` gives the row's values so far, as SQLAlchemy gives them to a
    Python-side default (e.g. ``studies.order_at`` defaults to the row's ``due_at``).
    """

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        """Return the parameters of the row being inserted."""
        return self._values


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # parameter order for positional paramstyles
    processors: dict[str, Callable[[Any], Any]]
    defaults: dict[str, Any]  # INSERT columns left out: their Python-side ColumnDefault
    fixed: dict[str, Any]  # literal values written into the statement


class Prepared:
    """One statement, compiled once per dialect, executed on the session's DBAPI cursor.

    Parameters
    ----------
    statement
        A Core statement whose parameters are :func:`~sqlalchemy.bindparam` names.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is not None:
            return found
        with self._lock:
            compiled = self.statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            processors: dict[str, Callable[[Any], Any]] = {}
            for name, bind in compiled.binds.items():
                processor = bind.type.bind_processor(dialect)
                if processor is not None:
                    processors[name] = processor
            positional = tuple(compiled.positiontup) if compiled.positional else None
            defaults = {
                column.key: column.default
                for column in getattr(compiled, "insert_prefetch", ())
                if column.default is not None
            }
            fixed = {
                name: bind.effective_value
                for name, bind in compiled.binds.items()
                if not bind.required and name not in defaults and not name.startswith("%(")
            }
            found = _Compiled(compiled.string, positional, processors, defaults, fixed)
            self._compiled[dialect.name] = found
        return found

    def _params(self, compiled: _Compiled, values: Mapping[str, Any]) -> Any:
        processed = {**compiled.fixed, **values}
        context = _DefaultContext(processed)
        for name, default in compiled.defaults.items():
            if name not in processed:  # as SQLAlchemy runs a Python-side default
                processed[name] = default.arg(context) if default.is_callable else default.arg
        for name, processor in compiled.processors.items():
            if name in processed:
                processed[name] = processor(processed[name])
        if compiled.positional is None:
            return processed
        return tuple(processed[name] for name in compiled.positional)

    def _cursor(self, session: Session) -> tuple[Any, _Compiled]:
        found = session.info.get(_DRIVER)
        if found is None or found[0] is not session.get_transaction():
            connection = session.connection()  # begins the transaction if not yet begun
            driver = connection.connection.driver_connection
            assert driver is not None
            found = (session.get_transaction(), connection.dialect, driver)
            session.info[_DRIVER] = found  # one look-up per transaction, not per statement
        _, dialect, driver = found
        return driver.cursor(), self._for(dialect)

    def rows(self, session: Session, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Execute with ``values`` in the session's transaction; return every row."""
        cursor, compiled = self._cursor(session)
        try:
            cursor.execute(compiled.sql, self._params(compiled, values))
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def first(self, session: Session, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Execute; return the first row, or ``None``."""
        found = self.rows(session, values)
        return found[0] if found else None

    def many(self, session: Session, values: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per item of ``values`` in one ``executemany`` call."""
        if not values:
            return
        cursor, compiled = self._cursor(session)
        try:
            cursor.executemany(compiled.sql, [self._params(compiled, v) for v in values])
        finally:
            cursor.close()

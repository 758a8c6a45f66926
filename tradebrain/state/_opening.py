"""Opening a state database: parse the URL, make the engine, set SQLite's pragmas, check the
schema. A wrong URL or a file that is something else is the user's to fix (``UserInputError``);
an existing SQLite file that is empty, unreadable or fails ``PRAGMA quick_check`` needs a
human (``StoreError``), and is never written to. No message shows a password.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL, Connection, Engine

from tradebrain.exceptions import StoreError, UserInputError
from tradebrain.state import _tables as t

SUPPORTED = ("sqlite", "postgresql")
BUSY_TIMEOUT_MS = 10_000
_HOW = (
    "write it as sqlite:///relative/state.db, sqlite:////absolute/state.db or "
    "postgresql+psycopg://user:password@host:5432/database"
)


def mask(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, safe to print and log."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        # Not parseable: hide anything between "user:" and "@" all the same.
        head, at, tail = url.rpartition("@")
        if not at or "://" not in head:
            return url
        scheme, _, credentials = head.partition("://")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{tail}"


def scrub(text: str, url: URL) -> str:
    """Return ``text`` with ``url``'s password hidden where it stands as a password.

    Only the password field is masked (``user:PASSWORD@`` in a URL, ``password=PASSWORD`` in a
    libpq DSN), never every occurrence of its characters: a short password such as ``p``
    would otherwise turn "psycopg" into "***syco***g" and so reveal itself.
    """
    password = url.password
    if not password:
        return text
    for form in dict.fromkeys((str(password), quote(str(password), safe=""))):
        escaped = re.escape(form)
        text = re.sub(f"(?<=:){escaped}(?=@)", "***", text)
        text = re.sub(f"(?<=password=){escaped}(?![^\\s'\"])", "***", text)
        text = re.sub(f"(?<=password=')({escaped})(?=')", "***", text)
    return text


def first_line(error: BaseException) -> str:
    """Return the first line of the driver's message behind ``error`` (or of ``error``)."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _reason(error: BaseException, url: URL) -> str:
    return scrub(first_line(error), url)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")  # first: WAL switch may wait
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_file(url: URL) -> Path | None:
    """Return the file a SQLite URL names (None: in memory or a ``file:`` URI)."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _way_out(shown: str) -> str:
    return (
        f"restore {shown} from a backup, or salvage what it holds with "
        "`sqlite3 OLD.db .recover | sqlite3 NEW.db`, or start a new run with --state NEW.db "
        "(a state database of its own); the file was left as it is"
    )


def _check_existing_file(path: Path, shown: str) -> None:
    """Refuse an existing state file that is empty or that this user cannot read and write.

    An empty file is not "no run yet": something truncated a run's record, and starting a
    fresh run over it would hide that (its trades, orders and positions gone from view).
    """
    if not path.is_file():
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(
            f"cannot read and write the state database {shown}; give this user read and "
            "write access to it (and to its folder), or start a new run with --state NEW.db"
        )
    if path.stat().st_size == 0:
        raise StoreError(
            f"the state database {shown} is an empty file (0 bytes): the run it held, if any, "
            "is lost, and tradebrain does not start a fresh run over an existing file unasked; "
            "delete the file to start afresh, or " + _way_out(shown)
        )


def _quick_check(engine: Engine, shown: str) -> None:
    """Refuse a SQLite file whose pages or indexes are damaged (``PRAGMA quick_check``)."""
    with engine.connect() as connection:
        found = [str(row[0]) for row in connection.exec_driver_sql("PRAGMA quick_check(5)")]
    if found != ["ok"]:
        raise StoreError(
            f"the state database {shown} is corrupt (PRAGMA quick_check: "
            f"{'; '.join(line.splitlines()[0] for line in found[:3])}); tradebrain will not "
            "trade on a damaged record; " + _way_out(shown)
        )


def _check_sqlite_path(url: URL, shown: str) -> None:
    path = _sqlite_file(url)
    if path is None:
        return
    if path.is_dir():
        raise UserInputError(
            f"state database {shown!r} names a folder, not a file; add a file name, "
            f"e.g. sqlite:///{path / 'state.db'}"
        )
    if not path.parent.is_dir():
        raise UserInputError(
            f"cannot open state database {shown!r}: the folder {path.parent} does not exist; "
            "create it first (StateStore.for_path creates it for you)"
        )


def open_engine(url: str) -> Engine:
    """Return a ready engine for ``url``: tables created, schema version checked."""
    shown = mask(url)
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError:
        raise UserInputError(f"cannot parse state database URL {shown!r}; {_HOW}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED:
        raise UserInputError(
            f"state database URL {shown!r} uses {backend!r}; the state store supports "
            f"SQLite and PostgreSQL only: {_HOW}"
        )
    existing = False
    if backend == "sqlite":
        _check_sqlite_path(parsed, shown)
        file = _sqlite_file(parsed)
        if file is not None:
            _check_existing_file(file, shown)
            existing = file.is_file()
    try:
        engine = sa.create_engine(parsed, pool_pre_ping=backend == "postgresql")
    except (exc.NoSuchModuleError, ImportError) as error:
        driver = parsed.get_driver_name()
        raise UserInputError(
            f"cannot open state database {shown!r}: its driver {driver!r} is not installed "
            f"({_reason(error, parsed)}); install it (for PostgreSQL: pip install "
            "'psycopg[binary]' and use postgresql+psycopg://...)"
        ) from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    try:
        if existing:
            _quick_check(engine, shown)  # before anything writes to it
        _prepare(engine, shown)
    except (UserInputError, StoreError):
        engine.dispose()
        raise
    except exc.SQLAlchemyError as error:
        engine.dispose()
        reason = _reason(error, parsed)
        if "malformed" in reason:
            raise StoreError(
                f"the state database {shown} is corrupt ({reason}); " + _way_out(shown)
            ) from None
        if "not a database" in reason:
            hint = (
                "the file exists but is not a SQLite database; point the store at a new "
                "file or at a tradebrain state database"
            )
        else:
            hint = "check the URL, that the server runs and that the user may connect"
        raise UserInputError(f"cannot open state database {shown!r}: {reason}; {hint}") from None
    return engine


def _prepare(engine: Engine, shown: str) -> None:
    # Two processes opening a new file at once may race on CREATE TABLE; the loser retries.
    for attempt in range(3):
        try:
            with engine.begin() as connection:
                _create_or_check(connection, shown)
            return
        except exc.OperationalError as error:
            if "already exists" not in str(error) or attempt == 2:
                raise
            time.sleep(0.05)


def _create_or_check(connection: Connection, shown: str) -> None:
    existing = set(sa.inspect(connection).get_table_names())
    if t.meta.name not in existing:
        if existing:
            found = ", ".join(sorted(existing)[:5])
            raise UserInputError(
                f"state database {shown!r} is not a tradebrain state database (it holds other "
                f"tables: {found}); point the store at a new file or an empty database"
            )
    else:
        pairs = connection.execute(sa.select(t.meta.c.key, t.meta.c.value))
        stored: dict[str, str] = {key: value for key, value in pairs}
        if stored.get("application") != t.APPLICATION:
            raise UserInputError(
                f"state database {shown!r} is not a tradebrain state database; point the store "
                "at a new file or an empty database"
            )
        version = int(stored.get("schema_version", "0"))
        if version > t.SCHEMA_VERSION:
            raise UserInputError(
                f"state database {shown!r} has schema version {version}, newer than this "
                f"tradebrain understands ({t.SCHEMA_VERSION}); upgrade tradebrain"
            )
    t.metadata.create_all(connection, checkfirst=True)
    t.upsert(
        connection,
        t.meta,
        [
            {"key": "application", "value": t.APPLICATION},
            {"key": "schema_version", "value": str(t.SCHEMA_VERSION)},
        ],
    )

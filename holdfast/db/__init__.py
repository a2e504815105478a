"""Database access: one `Database` per instance, no global engine.

SQLite (the default) runs in WAL mode with one writer: write transactions take an
in-process lock and start with `BEGIN IMMEDIATE`, so concurrent writers queue instead
of failing half-way, while readers never wait. PostgreSQL is used as is.

Services use `db.read()` for queries and `db.write()` for changes; `write()` commits
once when the block ends and rolls back on any exception, so stored data is never
half-written.

Other parts of the instance (federation, the tracker's allow-list, the seeder) learn
what a transaction changed through `db.on_commit(callback)`: after each committed
write, the callback gets the set of `(table, id)` pairs of the ORM rows the
transaction added, changed or deleted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("holdfast.db")

Changes = frozenset[tuple[str, int]]
CommitListener = Callable[[Changes], None]


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith("postgresql")
        if self.is_sqlite:
            self.engine = self._sqlite_engine(url, echo=echo, immediate=False)
            self.write_engine = self._sqlite_engine(url, echo=echo, immediate=True)
            self._write_lock: Any = threading.Lock()
        else:
            self.engine = create_engine(
                url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20
            )
            self.write_engine = self.engine
            self._write_lock = nullcontext()
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self.write_engine, expire_on_commit=False)
        self._commit_listeners: list[CommitListener] = []
        self._local = threading.local()

        @event.listens_for(self._write_sessions, "after_flush")
        def _collect(session: Session, _context: Any) -> None:
            changed: set[tuple[str, int]] = session.info.setdefault("changes", set())
            for obj in (*session.new, *session.dirty, *session.deleted):
                table = getattr(obj, "__tablename__", None)
                ident = getattr(obj, "id", None)
                if table is not None and isinstance(ident, int):
                    changed.add((table, ident))

    @staticmethod
    def _sqlite_engine(url: str, *, echo: bool, immediate: bool) -> Engine:
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        # Connections are pooled: opening one (and closing the last one on a WAL
        # database) costs milliseconds per transaction. A pooled connection is used by
        # one thread at a time, hence check_same_thread=False. The writer needs only one.
        pool: dict[str, Any] = (
            {}
            if in_memory
            else {"pool_size": 1 if immediate else 10, "max_overflow": 0 if immediate else 30}
        )
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            **pool,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event below issue BEGIN itself.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries. Anything it changes is discarded."""
        session = self._read_sessions()
        try:
            yield session
        finally:
            # close() ends the transaction but, unlike rollback(), leaves loaded
            # objects usable (detached) for the caller to render.
            session.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose changes are committed once, at the end of the block."""
        if getattr(self._local, "writing", False):
            # A nested write would wait forever for the lock (SQLite) or for rows its
            # own outer transaction holds (PostgreSQL): fail loudly instead.
            raise RuntimeError("db.write() was called inside another db.write() in this thread")
        with self._write_lock:
            self._local.writing = True
            session = self._write_sessions()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                self._local.writing = False
                changes = frozenset(session.info.pop("changes", ()))
                session.close()
        # Outside the write lock, so that a listener may itself write.
        if changes and self._commit_listeners:
            self._notify(changes)

    def on_commit(self, listener: CommitListener) -> None:
        """Call `listener(changes)` after every committed write that changed ORM rows."""
        self._commit_listeners.append(listener)

    def _notify(self, changes: Changes) -> None:
        for listener in list(self._commit_listeners):
            try:
                listener(changes)
            except Exception:  # a listener's failure never undoes a committed write
                log.exception("commit listener %r failed", listener)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.write_engine is not self.engine:
            self.write_engine.dispose()

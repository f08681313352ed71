"""Rules tables kept by version in the database, so an old case replays with the table it used.

The engine runs with the time-limit and routing tables shipped in `rules/data`; a history event names the
version it used. Each version the engine has run with is stored here (its files, as shipped) when an engine
starts, so after an upgrade ships 2027.1 the cases that used 2026.1 still replay with 2026.1.
"""
from __future__ import annotations

import tempfile
import threading
from datetime import datetime
from importlib import resources
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from rules.routing import load_routing
from rules.time_limits import load_time_limits

from engine.clock import SYSTEM_CLOCK
from engine.execution.functions import routing, time_limits
from engine.store.models import RuleTableVersion

FILES = {"time_limits": ("time_limits.csv", "time_limits.meta.json"),
         "routing": ("routing.csv", "routing.meta.json", "units.csv")}
NAMES = {"time_limits": "time-limit table", "routing": "routing table"}


def shipped(kind: str):
    return time_limits() if kind == "time_limits" else routing()


def _shipped_files(kind: str) -> dict[str, str]:
    data = resources.files("rules").joinpath("data")
    return {name: data.joinpath(name).read_text(encoding="utf-8-sig") for name in FILES[kind]}


def _load(kind: str, files: dict[str, str]):
    """A stored version as the rules module reads it (from files, as it reads the shipped ones)."""
    with tempfile.TemporaryDirectory(prefix="gridflow-rules-") as folder:
        for name, text in files.items():
            Path(folder, name).write_text(text, encoding="utf-8")
        main = Path(folder, FILES[kind][0])
        return load_time_limits(main) if kind == "time_limits" else load_routing(main)


class RuleTableStore:
    def __init__(self, sessions, readers):
        self._sessions = sessions
        self._readers = readers
        self._cache: dict[tuple[str, str], object] = {}
        self._rows: list[tuple[str, str, str, datetime]] | None = None
        self._lock = threading.Lock()

    def record_shipped(self) -> list[str]:
        """Store the shipped versions not stored yet; returns a warning for each shipped table whose content
        changed under a version already stored (replays of cases that used it would use the stored one)."""
        warnings = []
        for kind in FILES:
            table = shipped(kind)
            with self._readers() as session:
                row = session.scalars(sa.select(RuleTableVersion).filter_by(kind=kind, version=table.version)).first()
            if row is None:
                try:
                    with self._sessions() as session, session.begin():
                        session.add(RuleTableVersion(kind=kind, version=table.version, fingerprint=table.fingerprint,
                                                     files=_shipped_files(kind), created_at=SYSTEM_CLOCK.now()))
                except IntegrityError:  # another process stored it first
                    pass
                self._rows = None
            elif row.fingerprint != table.fingerprint:
                warnings.append(f"the shipped {NAMES[kind]} changed its content but kept version {table.version}; "
                                "give it a new version in its .meta.json")
        return warnings

    def _versions(self) -> list[tuple[str, str, str, datetime]]:
        if self._rows is None:
            with self._readers() as session:
                self._rows = [tuple(r) for r in session.execute(
                    sa.select(RuleTableVersion.kind, RuleTableVersion.version, RuleTableVersion.fingerprint,
                              RuleTableVersion.created_at).order_by(RuleTableVersion.created_at, RuleTableVersion.id))]
        return self._rows

    def in_force(self, kind: str, at: datetime) -> str:
        """The version the engine ran with at `at`: the newest stored by then (the shipped one if none)."""
        found = [version for k, version, _, created in self._versions() if k == kind and created <= at]
        return found[-1] if found else shipped(kind).version

    def get(self, kind: str, version: str):
        """The table of that version, or None when neither shipped nor stored."""
        key = (kind, version)
        if key in self._cache:
            return self._cache[key]
        current = shipped(kind)
        stored = {v: fp for k, v, fp, _ in self._versions() if k == kind}
        if version == current.version and stored.get(version, current.fingerprint) == current.fingerprint:
            table = current
        elif version in stored:
            with self._readers() as session:
                files = session.scalar(sa.select(RuleTableVersion.files).filter_by(kind=kind, version=version))
            table = _load(kind, files)
        else:
            return None
        with self._lock:
            self._cache[key] = table
        return table

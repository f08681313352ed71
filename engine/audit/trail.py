"""The auditor's side of the engine (纪检, 督查; 条例 §22): verify history chains against signed checkpoints,
replay cases, see a case as it was at any moment, and file its dossier. Nothing here changes a case.

Checkpoints: HMAC-SHA256, keyed by a file kept apart from the database (`GRIDFLOW_AUDIT_KEY_FILE`), over
every case's (id, last seq, head hash), the time, the checkpoint's number in its own chain and the previous
checkpoint's signature. Someone who can write to the database but has not the key can rewrite a chain with
fresh hashes, but not the signed head it must still reach. The key holder keeps a witness beside the key (the
latest checkpoint's id, number and signature), so deleting checkpoints or rolling them back to older ones
shows too. What this does and does not protect against: docs/audit.md.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import multiprocessing
import os
import secrets
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import EngineError, NotFound
from engine.cases.history import GENESIS, canonical, verify_chain
from engine.store.models import AuditCheckpoint, Case, HistoryEvent
from engine.audit.replay import EVENT_COLUMNS, Replayer, ReplayResult
from engine.audit.rule_tables import RuleTableStore
from engine.audit.asof import as_of
from engine.audit import dossier

KEY_ENV = "GRIDFLOW_AUDIT_KEY_FILE"
KEY_BYTES = 32
STREAM_BATCH = 2000      # events fetched per round trip while verifying
REPLAY_CHUNK = 250       # cases per unit of work when replaying all of them


class AuditKeyError(EngineError):
    code = "audit_key"


# -- the key ------------------------------------------------------------------------------------------

def key_path(path: str | os.PathLike | None = None) -> Path:
    chosen = path or os.environ.get(KEY_ENV)
    if not chosen:
        raise AuditKeyError(f"no audit key: set {KEY_ENV} to the key file (create one with `gridflow audit keygen "
                            "--out FILE`), kept apart from the database")
    return Path(chosen)


def generate_key(path: str | os.PathLike) -> str:
    """Write a new random key to `path` (owner-only), refusing to overwrite one; returns its key id."""
    target = Path(path)
    if target.exists():
        raise AuditKeyError(f"{target} exists; a key is never overwritten (checkpoints signed with it would no "
                            "longer verify)")
    target.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(KEY_BYTES)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    return key_id(bytes.fromhex(key))


def read_key(path: str | os.PathLike | None = None) -> bytes:
    source = key_path(path)
    try:
        text = source.read_text().strip()
        key = bytes.fromhex(text)
    except FileNotFoundError:
        raise AuditKeyError(f"audit key file {source} not found") from None
    except (ValueError, UnicodeDecodeError):
        raise AuditKeyError(f"{source} is not an audit key (64 hex digits from `gridflow audit keygen`)") from None
    if len(key) < 16:
        raise AuditKeyError(f"{source}: the key is too short ({len(key)} bytes); generate one with keygen")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"gridflow-audit-key-id" + key).hexdigest()[:16]


def _sign(key: bytes, created_at: datetime, heads: list, prev_signature: str | None, seq: int | None = None) -> str:
    """The signature of a checkpoint; `seq`, its number in the chain of checkpoints, is signed since that
    chain exists (checkpoints signed before have None and the message they were signed with)."""
    meaning = {"at": created_at.isoformat(), "heads": heads, "prev": prev_signature}
    if seq is not None:
        meaning["seq"] = seq
    return hmac.new(key, canonical(meaning), hashlib.sha256).hexdigest()


def _signed_as(key: bytes, row: AuditCheckpoint) -> bool:
    expected = row.signature
    return hmac.compare_digest(_sign(key, row.created_at, row.heads, row.prev_signature, row.seq), expected) or \
        hmac.compare_digest(_sign(key, row.created_at, row.heads, row.prev_signature), expected)


# -- the witness: the latest checkpoint as the key holder last saw it ---------------------------------------

WITNESS_SUFFIX = ".witness"


@dataclass(frozen=True)
class Witness:
    checkpoint_id: int
    seq: int
    signature: str

    def __str__(self) -> str:   # the form printed for filing and accepted back by `verify --witness`
        return f"{self.checkpoint_id}:{self.seq}:{self.signature}"

    @classmethod
    def parse(cls, text: str) -> "Witness":
        try:
            checkpoint_id, seq, signature = text.strip().split(":")
            if len(signature) != 64:
                raise ValueError
            int(signature, 16)
            return cls(int(checkpoint_id), int(seq), signature.lower())
        except ValueError:
            raise AuditKeyError(f"{text!r} is not a checkpoint witness (ID:NUMBER:SIGNATURE, as `gridflow audit "
                                "checkpoint` prints it)") from None


def witness_path(key_file=None) -> Path:
    path = key_path(key_file)
    return path.with_name(path.name + WITNESS_SUFFIX)


def read_witness(key_file=None) -> Witness | None:
    """The witness kept beside the key, or None when there is none yet."""
    try:
        data = json.loads(witness_path(key_file).read_text())
        return Witness(int(data["checkpoint_id"]), int(data["seq"]), str(data["signature"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        raise AuditKeyError(f"{witness_path(key_file)} is not a checkpoint witness; restore it from a copy "
                            "(`gridflow audit checkpoint` printed each one)") from None


def _write_witness(key_file, witness: Witness) -> None:
    target = witness_path(key_file)
    temporary = target.with_name(target.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"checkpoint_id": witness.checkpoint_id, "seq": witness.seq, "signature": witness.signature},
                  out)
        out.write("\n")
    os.replace(temporary, target)   # never half a witness


# -- results ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    case_id: int | None
    seq: int | None
    kind: str        # edited, deleted, inserted, reordered, truncated, rewritten, missing, head, checkpoint
    detail: str


@dataclass
class VerifyReport:
    cases: int = 0
    events: int = 0
    checkpoint_id: int | None = None
    checkpoint_at: datetime | None = None
    checkpoint_cases: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


@dataclass
class ReplayReport:
    cases: int = 0
    equal: int = 0
    results: list[ReplayResult] = field(default_factory=list)   # those not equal

    @property
    def diverged(self) -> list[ReplayResult]:
        return [r for r in self.results if r.divergence is not None]

    @property
    def cannot(self) -> list[ReplayResult]:
        return [r for r in self.results if r.cannot is not None]


def _kind_of(reason: str) -> str:
    for word in ("edited", "reordered", "inserted", "deleted"):
        if word in reason:
            return "deleted, inserted or reordered" if "deleted, inserted or reordered" in reason else word
    return "broken link"


class AuditService:
    def __init__(self, sessions, readers, definitions, calendars, url: str, engine_factory=None):
        """`engine_factory(url, migrate=False)` builds an engine in each replay worker process (the
        `Engine` class itself, passed in so that this package need not import the one that composes it)."""
        self._sessions = sessions
        self._readers = readers
        self._url = url
        self._engine_factory = engine_factory
        self.rule_tables = RuleTableStore(sessions, readers)
        self.replayer = Replayer(readers, definitions, calendars, self.rule_tables)

    # -- checkpoints --------------------------------------------------------------------------------

    def checkpoint(self, *, by: str, key_file=None, clock: Clock = SYSTEM_CLOCK) -> AuditCheckpoint:
        """Sign every case's current head (as the case row keeps it) and store the checkpoint."""
        key = read_key(key_file)
        now = clock.now()
        with self._sessions() as session, session.begin():
            heads = [[cid, seq, head] for cid, seq, head in session.execute(
                sa.select(Case.id, Case.last_seq, Case.last_event_hash).order_by(Case.id))]
            prev = session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc(),
                                                                       AuditCheckpoint.id.desc()).limit(1)).first()
            prev_signature = prev.signature if prev is not None else None
            seq = (prev.seq or 0) + 1 if prev is not None else 1
            row = AuditCheckpoint(created_at=now, created_by=by, key_id=key_id(key), case_count=len(heads),
                                  heads=heads, prev_signature=prev_signature, seq=seq,
                                  signature=_sign(key, now, heads, prev_signature, seq))
            session.add(row)
        # After the commit: a witness of a checkpoint that was never stored would accuse the database wrongly.
        witness = Witness(row.id, row.seq, row.signature)
        try:
            _write_witness(key_file, witness)
        except OSError as exc:
            raise AuditKeyError(f"checkpoint {row.id} was signed and stored, but its witness could not be written "
                                f"beside the key ({exc.strerror or exc}); file it elsewhere: {witness}") from None
        return row

    def checkpoints(self, limit: int = 20) -> list[AuditCheckpoint]:
        with self._readers() as session:
            return list(session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc(),
                                                                            AuditCheckpoint.id.desc()).limit(limit)))

    def _check_chain(self, witness: Witness | None, report: VerifyReport) -> None:
        """The checkpoints' own chain: numbered 1, 2, 3 … each signing the one before, and reaching the
        witness the key holder kept. A gap, a broken link, or a chain that ends before the witness (all
        checkpoints deleted, or the newest ones, or rolled back to an older copy) is tampering."""
        columns = (AuditCheckpoint.id, AuditCheckpoint.seq, AuditCheckpoint.prev_signature, AuditCheckpoint.signature)
        with self._readers() as session:
            chain = session.execute(sa.select(*columns).order_by(AuditCheckpoint.seq, AuditCheckpoint.id)).all()
        previous = None
        for number, (cid, seq, prev_signature, _signature) in enumerate(chain, start=1):
            if seq != number:
                report.findings.append(Finding(None, None, "checkpoint", f"checkpoint {cid} is number {seq} of the "
                                               f"checkpoint chain where number {number} belongs: checkpoints before "
                                               "it were deleted or renumbered"))
                break
            if (previous[3] if previous else None) != prev_signature:
                report.findings.append(Finding(None, None, "checkpoint", f"checkpoint {cid} (number {seq}) does not "
                                               "sign the signature of the one before it: a checkpoint between them "
                                               "was removed or altered"))
                break
            previous = (cid, seq, prev_signature, _signature)
        if witness is None:
            return
        at = next((row for row in chain if row[1] == witness.seq), None)
        if at is None:
            latest = f"end at number {chain[-1][1]}" if chain else "are all gone"
            report.findings.append(Finding(None, None, "checkpoint", f"the witness names checkpoint "
                                           f"{witness.checkpoint_id} (number {witness.seq}) but the database's "
                                           f"checkpoints {latest}: checkpoints were deleted or rolled back"))
        elif at[0] != witness.checkpoint_id or not hmac.compare_digest(at[3], witness.signature):
            report.findings.append(Finding(None, None, "checkpoint", f"checkpoint number {witness.seq} is not the one "
                                           f"the witness names (checkpoint {witness.checkpoint_id} with its "
                                           "signature): the checkpoints were replaced or rolled back"))
        elif chain[-1][1] > witness.seq:
            report.notes.append(f"{chain[-1][1] - witness.seq} checkpoint(s) were signed after the witness given "
                                f"(checkpoint {witness.checkpoint_id}); they hold to it")

    def _latest_checkpoint(self, key: bytes | None, report: VerifyReport) -> dict[int, tuple[int, str]] | None:
        with self._readers() as session:
            rows = list(session.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc(),
                                                                            AuditCheckpoint.id.desc()).limit(2)))
        if not rows:
            if any(f.kind == "checkpoint" for f in report.findings):
                return None
            report.notes.append("no checkpoint yet: chains are checked for internal consistency only, and a chain "
                                "rewritten with fresh hashes would pass; run `gridflow audit checkpoint`")
            return None
        latest = rows[0]
        report.checkpoint_id, report.checkpoint_at, report.checkpoint_cases = latest.id, latest.created_at, \
            latest.case_count
        if key is None:
            report.notes.append(f"no audit key given ({KEY_ENV}): checkpoint {latest.id}'s signature is not checked")
        elif latest.key_id != key_id(key):
            report.findings.append(Finding(None, None, "checkpoint", f"checkpoint {latest.id} was signed with key "
                                           f"{latest.key_id}, not the key given ({key_id(key)})"))
            return None
        elif not _signed_as(key, latest):
            report.findings.append(Finding(None, None, "checkpoint", f"checkpoint {latest.id}'s signature does not "
                                           "match its contents: the checkpoint itself was altered"))
            return None
        if len(rows) > 1 and latest.prev_signature != rows[1].signature:
            report.findings.append(Finding(None, None, "checkpoint", f"checkpoint {latest.id} does not follow "
                                           f"checkpoint {rows[1].id}: one between them was removed or altered"))
        return {int(cid): (int(seq), head) for cid, seq, head in latest.heads}

    # -- verify -------------------------------------------------------------------------------------

    def verify(self, case_id: int | None = None, *, key_file=None, use_key: bool = True,
               progress=None, witness: Witness | str | None = None) -> VerifyReport:
        """Check each case's chain (edited, deleted, inserted, reordered events), its head against the case
        row, and against the latest signed checkpoint (rewritten, truncated or deleted chains); and the
        checkpoints' own chain against `witness` (default: the witness file beside the key)."""
        report = VerifyReport()
        key = None
        if use_key:
            try:
                key = read_key(key_file)
            except AuditKeyError as exc:
                if key_file is not None or os.environ.get(KEY_ENV):
                    raise
                report.notes.append(str(exc))
        if isinstance(witness, str):
            witness = Witness.parse(witness)
        if witness is None and key is not None:
            witness = read_witness(key_file)
            if witness is None:
                report.notes.append(f"no checkpoint witness beside the key ({witness_path(key_file)}): deleted or "
                                    "rolled-back checkpoints cannot be told from none; it is written by every "
                                    "checkpoint")
        self._check_chain(witness, report)
        signed = self._latest_checkpoint(key, report)
        report.notes += self.rule_tables.record_shipped() if case_id is None else []
        with self._readers() as session:
            case_query = sa.select(Case.id, Case.last_seq, Case.last_event_hash).order_by(Case.id)
            event_query = sa.select(*EVENT_COLUMNS).order_by(HistoryEvent.case_id, HistoryEvent.seq)
            if case_id is not None:
                case_query = case_query.where(Case.id == case_id)
                event_query = event_query.where(HistoryEvent.case_id == case_id)
            heads = {cid: (seq, head) for cid, seq, head in session.execute(case_query)}
            if case_id is not None and not heads:
                if signed and case_id in signed:
                    report.findings.append(Finding(case_id, None, "missing", "the case is in the signed checkpoint "
                                                   "but no longer in the database: it was deleted"))
                    return report
                raise NotFound(f"no case {case_id}")
            stream = session.execute(event_query.execution_options(yield_per=STREAM_BATCH))
            seen = set()
            for cid, events in itertools.groupby(stream, key=lambda e: e.case_id):
                events = list(events)
                seen.add(cid)
                self._check_case(cid, events, heads.get(cid), signed, report)
                report.cases += 1
                report.events += len(events)
                if progress is not None and report.cases % 1000 == 0:
                    progress(report)
        for cid in sorted(set(heads) - seen):
            report.cases += 1
            report.findings.append(Finding(cid, 1, "deleted", "the case has no history events: all were deleted"))
        if signed is not None:
            for cid in sorted(set(signed) - set(heads)):
                if case_id is None or cid == case_id:
                    report.findings.append(Finding(cid, None, "missing", "the case is in the signed checkpoint but "
                                                   "no longer in the database: it was deleted"))
        if progress is not None:
            progress(report)
        return report

    @staticmethod
    def _check_case(cid: int, events: list, head, signed, report: VerifyReport) -> None:
        broken = verify_chain(cid, events)
        if broken is not None:
            report.findings.append(Finding(cid, broken.seq, _kind_of(broken.reason), broken.reason))
            return
        last_seq, last_hash = (events[-1].seq, events[-1].event_hash) if events else (0, GENESIS)
        if head is not None and (head[0], head[1]) != (last_seq, last_hash):
            report.findings.append(Finding(cid, last_seq + 1 if head[0] > last_seq else last_seq, "truncated" if
                                           head[0] > last_seq else "head",
                                           f"the chain ends at event {last_seq} but the case row's head is event "
                                           f"{head[0]}" + (": events at the end were deleted" if head[0] > last_seq
                                                            else " with another hash")))
            return
        if signed is None or cid not in signed:
            return
        signed_seq, signed_hash = signed[cid]
        if last_seq < signed_seq:
            report.findings.append(Finding(cid, last_seq + 1, "truncated", f"the signed checkpoint has event "
                                           f"{signed_seq} as head; the chain now ends at {last_seq}"))
        elif events[signed_seq - 1].event_hash != signed_hash:
            report.findings.append(Finding(cid, signed_seq, "rewritten", f"event {signed_seq} no longer has the hash "
                                           "the checkpoint signed: the chain up to it was rewritten with fresh "
                                           "hashes"))

    # -- replay -------------------------------------------------------------------------------------

    def replay(self, case_id: int) -> ReplayResult:
        self.rule_tables.record_shipped()
        return self.replayer.case(case_id)

    def replay_all(self, *, processes: int | None = None, progress=None) -> ReplayReport:
        """Replay every case; in `processes` worker processes (default: one per core) when there are many."""
        self.rule_tables.record_shipped()
        with self._readers() as session:
            ids = list(session.scalars(sa.select(Case.id).order_by(Case.id)))
        chunks = [ids[i:i + REPLAY_CHUNK] for i in range(0, len(ids), REPLAY_CHUNK)]
        report = ReplayReport()
        processes = processes or os.cpu_count() or 1
        if processes <= 1 or len(chunks) <= 1:
            outcomes = (_summary(self.replayer.cases(chunk)) for chunk in chunks)
            for outcome in outcomes:
                _add(report, outcome, progress)
            return report
        # Spawned, not forked: a forked child would share this process's database connections and flush its
        # copy of buffered output a second time.
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_start, initargs=(self._engine_factory, self._url)) as pool:
            for outcome in pool.map(_worker_replay, chunks):
                _add(report, outcome, progress)
        return report


    # -- as it was; the dossier ---------------------------------------------------------------------

    def as_of(self, case_id: int, moment: datetime, *, reveal: bool = False):
        return as_of(self.replayer, case_id, moment, reveal=reveal)

    def dossier(self, case_id: int, queries, *, reveal: bool = False, key_file=None,
                clock: Clock = SYSTEM_CLOCK) -> dict:
        """The case's dossier as data (`dossier.to_json`/`to_html` render it); `queries`: the engine's read side."""
        view = queries.case(case_id)
        events = queries.history(case_id)
        return dossier.build(view, events, self.verify(case_id, key_file=key_file), self.replay(case_id),
                             reveal=reveal, generated_at=clock.now())


def _summary(results: list[ReplayResult]) -> tuple[int, int, list[ReplayResult]]:
    odd = [r for r in results if not r.equal]
    for r in odd:
        r.state = None  # workflow objects stay in the worker
    return len(results), len(results) - len(odd), odd


def _add(report: ReplayReport, outcome, progress) -> None:
    count, equal, odd = outcome
    report.cases += count
    report.equal += equal
    report.results += odd
    if progress is not None:
        progress(report)


_WORKER: dict = {}


def _worker_start(engine_factory, url: str) -> None:
    _WORKER["engine"] = engine_factory(url, migrate=False)


def _worker_replay(case_ids: list[int]):
    return _summary(_WORKER["engine"].audit.replayer.cases(case_ids))

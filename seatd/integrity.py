"""The check a seat table passes before it is served, restored, or accepted as a backup.

LMDB trusts its file. On a zeroed page it fails an assertion and aborts the process
(`mdb.c: Assertion 'IS_LEAF(mp)' failed`); on a truncated file a read faults with SIGBUS.
Neither can be caught in Python, and both would only strike at the first read of the damaged
page: a daemon that serves, then dies on its first journal read, and crash-loops under
systemd. So the check runs in a child process (`python -m seatd.integrity PATH`) that walks
every database once, reading every key and value; a child killed by a signal becomes a clear
refusal naming the database it was reading.

Checked, in one read transaction:

- every page of every database reads, and every record of the state (meta, sessions,
  licence, licence history, tokens, endings) decodes through `seatd.records`;
- meta holds the schema version, base id, installation secret, next session id (above every
  session) and, from schema 2, the journal's head;
- the journal's last entry is that recorded head, so a removed tail is caught;
- for the live state, LMDB's free list takes a write (a write transaction, aborted);
- with `chain=True` (backups), the whole hash chain verifies from the pruning checkpoint.

Before serving, the chain is not verified: at 200,000 entries that takes seconds where the
walk takes about a tenth of one (`seatctl journal verify` does it on demand, and `journal
verify` and this check both compare the recorded head).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lmdb

from seatd import filemodes, journal, records
from seatd.errors import DamagedRecord, StateError, StoreDamaged

# A walk reads about 100 MB a second here; this only bounds a check that cannot end.
CHECK_TIMEOUT = 600.0
_DAMAGED = 3
# How LMDB dies on a damaged file: a failed assertion aborts, a read past a truncated end
# faults. Any other signal (OOM killer, a stop during start) says nothing about the file.
_CRASHES = (signal.SIGABRT, signal.SIGBUS, signal.SIGSEGV)
_READING = "integrity: reading "


@dataclass(frozen=True, slots=True)
class Report:
    """What a check found in a seat table that passed it."""

    schema: int
    base_id: str
    sessions: int
    journal_entries: int
    head_seq: int
    records: int
    chain_verified: bool

    def summary(self) -> str:
        chain = ", hash chain verified" if self.chain_verified else ""
        return (
            f"base id {self.base_id}, {self.sessions} sessions, {self.journal_entries} journal "
            f"entries up to seq {self.head_seq}{chain}"
        )


def check(path: Path, *, live: bool, chain: bool = False) -> Report:
    """Check the LMDB environment at `path` (a `seatd.lmdb` directory when `live`, else a
    backup file) in a child process. Raises StoreDamaged saying what is damaged."""
    flags = (["--live"] if live else []) + (["--chain"] if chain else [])
    return Report(**_child(path, flags))


def check_pages(path: Path) -> int:
    """Check a live LMDB environment whose records this module does not know (the vendor's
    cloud ledger) in a child process: every page of every database read, the free-page list
    written to (rolled back). Returns the records read; raises StoreDamaged."""
    return Report(**_child(path, ["--live", "--pages"])).records


def verify_journal(path: Path) -> tuple[int, int | None, int]:
    """The journal of the live seat table at `path` (its `seatd.lmdb` directory) verified in
    a child process: entries, the first seq the chain does not prove (None if intact), and
    the last seq. The chain runs from the pruning checkpoint to the head recorded in meta, so
    a removed tail is caught too; one read transaction, so a commit meanwhile cannot look
    like one.

    A child, not a thread: hashing 200,000 entries is seconds of Python, and a thread doing
    it holds the GIL the event loop and the commit thread need, whatever it yields (measured:
    a paced thread added 5-8 ms to the loop's p99 wake-up and took 10 s; a child added
    nothing and took 1.5 s).
    """
    found = _child(path, ["--journal"])
    return int(found["entries"]), found["broken"], int(found["last"])


def _child(path: Path, flags: list[str]) -> dict[str, Any]:
    """Run `python -m seatd.integrity PATH FLAGS` and return what it printed."""
    cmd = [sys.executable, "-m", "seatd.integrity", str(path), *flags]
    # The very interpreter running now (Linux's /proc/self/exe), under its usual name: a
    # service user may be unable to reach it by path (a symlink into a directory only root
    # may enter), and an upgrade may have replaced the file since the daemon started.
    me = "/proc/self/exe"
    try:
        proc = subprocess.run(
            cmd,
            executable=me if os.path.exists(me) else None,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise StoreDamaged(f"reading it did not end within {CHECK_TIMEOUT:.0f} s") from None
    if proc.returncode == 0:
        found: dict[str, Any] = json.loads(proc.stdout)
        return found
    if proc.returncode == _DAMAGED:
        raise StoreDamaged(str(json.loads(proc.stdout)["damaged"]))
    lines = proc.stderr.splitlines()
    reading = [line.removeprefix(_READING) for line in lines if line.startswith(_READING)]
    said = [line.strip() for line in lines if line.strip() and not line.startswith(_READING)]
    if -proc.returncode in _CRASHES:
        where = f" while reading {reading[-1]}" if reading else ""
        why = f": {said[-1]}" if said else ""
        raise StoreDamaged(
            f"LMDB crashed on it ({signal.Signals(-proc.returncode).name}){where}{why}"
        )
    # Not the table's fault (the check could not run, or was killed): say so, not "damaged".
    how = (
        f"was stopped by {signal.Signals(-proc.returncode).name}"
        if proc.returncode < 0
        else f"failed: {said[-1] if said else proc.returncode}"
    )
    raise StateError(f"the check of the seat table {path} {how}")


def check_backup(backup: Path) -> Report:
    """Check a backup file as a whole: every page read, every record decoded, the hash chain
    verified. Raises StoreDamaged naming the file and what is wrong with it."""
    try:
        report = check(backup, live=False, chain=True)
    except StoreDamaged as exc:
        raise StoreDamaged(f"{backup} is not a usable seat table backup: {exc}") from None
    if report.schema > records.SCHEMA_VERSION:
        raise StoreDamaged(
            f"{backup} was made by a newer seatd (schema version {report.schema}; this seatd "
            f"reads up to {records.SCHEMA_VERSION}): restore it with that version"
        )
    return report


class _Walk:
    """The checks made while walking, database by database (see the module docstring)."""

    def __init__(self, chain: bool) -> None:
        self.chain = chain
        self.meta: dict[bytes, Any] = {}
        self.top_session = 0
        self.sessions = 0
        self.entries = 0
        self.last_entry: tuple[bytes, bytes] | None = None
        self.links: list[journal.Link] = []

    def checker(self, name: str) -> Callable[[bytes, bytes], object]:
        return {
            "meta": self.meta_record,
            "sessions": self.session,
            "journal": self.entry,
            "licence": self.licence,
            "licence_history": records.decode_history,
            "tokens": records.decode_token,
            "endings": records.decode_ending,
        }.get(name, _read_only)

    def meta_record(self, key: bytes, raw: bytes) -> None:
        decode = {
            b"schema_version": records.decode_number,
            b"next_session_id": records.decode_number,
            b"base_id": records.decode_text,
            b"installation_secret": records.decode_text,
            b"last_seen": records.decode_time,
            b"journal_checkpoint": records.decode_chain_point,
            b"journal_head": records.decode_chain_point,
            b"restored": records.decode_restored,
        }.get(key)
        if decode is not None:
            self.meta[key] = decode("meta", key, raw)

    def session(self, key: bytes, raw: bytes) -> None:
        self.top_session = max(self.top_session, records.decode_session(key, raw).id)
        self.sessions += 1

    def entry(self, key: bytes, raw: bytes) -> None:
        self.entries += 1
        self.last_entry = (key, raw)
        if self.chain:
            self.links.append(journal.Link(records.key_number("journal", key), raw))

    def licence(self, key: bytes, raw: bytes) -> None:
        if key == b"active_seats":
            records.decode_number("licence", key, raw)
        elif key == b"transferred":
            records.decode_transfer(key, raw)
        elif key in (b"current", b"next", b"next_serial", b"lineage"):
            records.decode_text("licence", key, raw)

    def report(self, records_read: int) -> Report:
        schema = self.required(b"schema_version")
        if schema > records.SCHEMA_VERSION:
            # A newer seatd's table: the store names the version to use; no more to say here.
            return Report(schema, "", 0, 0, 0, records_read, chain_verified=False)
        next_id = self.required(b"next_session_id")
        base_id = self.required(b"base_id")
        if schema >= 2:
            self.required(b"installation_secret")
        if next_id <= self.top_session:
            raise DamagedRecord(
                "meta", "'next_session_id'", f"is {next_id}, not above session {self.top_session}"
            )
        anchor = self.meta.get(b"journal_checkpoint", (0, journal.GENESIS))
        last = anchor
        if self.last_entry is not None:
            entry = records.decode_entry(*self.last_entry)
            last = (entry["seq"], entry["hash"])
        # Schema 1 recorded no head: the upgrade records the one found.
        head = self.required(b"journal_head") if schema >= 2 else last
        cut = journal.tail_break(last, head)
        if cut is not None:
            raise StoreDamaged(
                f"the journal ends at seq {last[0]} but its recorded head is seq {head[0]}: "
                f"from seq {cut} on, entries were removed or are not its own"
            )
        if self.chain:
            broken = journal.first_unproven(self.links, anchor, head)
            if broken is not None:
                raise StoreDamaged(f"the journal's hash chain breaks at seq {broken}")
        return Report(
            schema=schema,
            base_id=base_id,
            sessions=self.sessions,
            journal_entries=self.entries,
            head_seq=head[0],
            records=records_read,
            chain_verified=self.chain,
        )

    def required(self, key: bytes) -> Any:
        if key not in self.meta:
            raise DamagedRecord("meta", repr(key.decode()), "is missing")
        return self.meta[key]


def walk(
    path: Path,
    *,
    live: bool,
    chain: bool,
    progress: Callable[[str], None],
    pages: bool = False,
) -> Report:
    """The check itself, in this process (the child's side of `check`); with `pages`, only
    the reads and the write, no record of the seat table checked (`check_pages`)."""
    if live:
        # The lock file may be made here: private like the rest of the state.
        env = lmdb.open(str(path), max_dbs=64, create=False, mode=filemodes.PRIVATE_FILE)
    else:
        env = lmdb.open(str(path), subdir=False, readonly=True, lock=False, max_dbs=64)
    try:
        return _walk(env, _Pages() if pages else _Walk(chain), live, progress)
    finally:
        env.close()


class _Pages(_Walk):
    """A walk that decodes nothing: reading every record is the whole check."""

    def __init__(self) -> None:
        super().__init__(chain=False)

    def checker(self, name: str) -> Callable[[bytes, bytes], object]:
        return _read_only

    def report(self, records_read: int) -> Report:
        return Report(0, "", 0, 0, 0, records_read, chain_verified=False)


def _read_only(key: bytes, value: bytes) -> None:
    """A database this check has no decoder for: reading every record is its check."""


def _walk(
    env: lmdb.Environment, state: _Walk, live: bool, progress: Callable[[str], None]
) -> Report:
    read = 0
    with env.begin() as txn:
        progress("the list of databases")
        try:
            names = sorted((bytes(k) for k, _ in txn.cursor()), key=lambda n: n != b"meta")
        except lmdb.Error as exc:
            raise StoreDamaged(f"LMDB cannot read its list of databases: {exc}") from None
        for name in names:
            text = name.decode(errors="replace")
            progress(f"database {text!r}")
            try:
                db = env.open_db(name, txn=txn, create=False)
                check_record = state.checker(text)
                for key, value in txn.cursor(db=db):
                    check_record(key, value)
                    read += 1
            except lmdb.Error as exc:
                raise StoreDamaged(f"LMDB cannot read database {text!r}: {exc}") from None
            if name == b"meta" and state.meta.get(b"schema_version", 0) > records.SCHEMA_VERSION:
                return state.report(read)
    if live:
        progress("the free-page list (by a write, rolled back)")
        txn = env.begin(write=True)
        try:
            txn.put(b"integrity_probe", b"", db=env.open_db(b"meta", txn=txn, create=False))
        except lmdb.MapFullError:
            pass  # the free list was read to find no room: a full map, which the store grows
        except lmdb.Error as exc:
            raise StoreDamaged(f"LMDB cannot write to it: {exc}") from None
        finally:
            txn.abort()
    return state.report(read)


def journal_chain(path: Path) -> tuple[int, int | None, int]:
    """The child's side of `verify_journal`, read-only."""
    env = lmdb.open(str(path), max_dbs=64, readonly=True, create=False)
    try:
        with env.begin() as txn:
            entries = env.open_db(b"journal", txn=txn, create=False)
            meta = env.open_db(b"meta", txn=txn, create=False)
            links = [
                journal.Link(records.key_number("journal", key), bytes(raw))
                for key, raw in txn.cursor(db=entries)
            ]
            anchor, head = (
                chain_point(txn, meta, b"journal_checkpoint"),
                chain_point(txn, meta, b"journal_head"),
            )
    finally:
        env.close()
    last = links[-1].seq if links else 0
    return len(links), journal.first_unproven(links, anchor, head), last


def chain_point(txn: lmdb.Transaction, meta: Any, key: bytes) -> tuple[int, str]:
    """A chain point (seq, hash) kept in meta: the pruning checkpoint or the journal's head;
    seq 0 and GENESIS where there is none."""
    raw = txn.get(key, db=meta)
    if raw is None:
        return 0, journal.GENESIS
    return records.decode_chain_point("meta", key, bytes(raw))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seatd.integrity", description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--live", action="store_true", help="a state's seatd.lmdb directory")
    parser.add_argument("--chain", action="store_true", help="verify the whole hash chain")
    parser.add_argument(
        "--journal", action="store_true", help="only verify a live table's journal, read-only"
    )
    parser.add_argument(
        "--pages", action="store_true", help="only read every page (not a seat table)"
    )
    args = parser.parse_args(argv)

    def progress(what: str) -> None:
        print(f"{_READING}{what}", file=sys.stderr, flush=True)

    try:
        if args.journal:
            progress("the journal")
            entries, broken, last = journal_chain(args.path)
            print(json.dumps({"entries": entries, "broken": broken, "last": last}))
            return 0
        report = walk(
            args.path, live=args.live, chain=args.chain, progress=progress, pages=args.pages
        )
    except StoreDamaged as exc:
        print(json.dumps({"damaged": str(exc)}))
        return _DAMAGED
    except lmdb.Error as exc:
        print(json.dumps({"damaged": f"LMDB cannot open it: {exc}"}))
        return _DAMAGED
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

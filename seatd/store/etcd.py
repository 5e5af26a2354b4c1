"""The etcd backend (cluster mode): the same seat table, in an etcd cluster.

Every record lives under one key prefix per site, `/seatd/<site>/store/<table>/<key>`: the tables
and keys of the LMDB store (`seatd.store.base.TABLES`), a numbered key written as 16 hex
digits so that etcd's key order is the numeric order. The leader key of the instances'
election is beside it, `/seatd/<site>/leader`. One group commit is one etcd `Txn`
(all or nothing, journal head included), guarded by two compares:

- the fence: the leader key's create revision is still the one this instance won with
  (etcd's own election fencing, as in its `concurrency.Election`). The leader key is
  attached to the leader's etcd lease, so once that lease ends, or another instance has
  won, every write fails here and commits nothing (`Fenced`);
- the journal head is still the one this instance wrote last, so the hash chain can only
  continue from where it is, whoever wrote before.

Only the fenced leader writes, so the small tables a commit reads (meta, licence, its
history, tokens, kept endings) are mirrored in memory from `load` on; sessions and the
journal are only written. The client is etcd's v3 gRPC API through aetcd's generated stubs
(`aetcd.rpc`) on a blocking channel per endpoint: the store is called from the committer's
writer thread and from reads on any thread, and aetcd's asyncio `Client` (one host, no TLS,
no lease compare, no range limit in 1.0) fits neither.

etcd's own bounds stand in for LMDB's map: the capacity's ceiling is `quota_bytes` (set it
to etcd's `--quota-backend-bytes`, whose default is 2 GiB), the used bytes are etcd's
`dbSizeInUse`; pruning the journal compacts etcd's history up to that commit, so old
revisions do not keep the pruned entries. etcd must allow `max_txn_ops` operations in one
transaction (`--max-txn-ops`; its default, 128, is less than a reaper commit can take).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
import structlog
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from seatd import journal, records
from seatd.capacity import Capacity
from seatd.errors import ConfigError, Fenced, StateError, StorageFailed, StoreDamaged
from seatd.model import Ended, Event, Granted, JournalPruned
from seatd.pacing import Paced, paced
from seatd.store import plan
from seatd.store.base import NUMBERED, TABLES, Snapshot, Table, read_snapshot

log = structlog.get_logger("seatd")
_T = TypeVar("_T")
ADVICE = "Check the etcd cluster (`etcdctl endpoint health --cluster`)"
_SITE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
# Keys per range request: a page stays far below gRPC's 4 MiB message limit.
_PAGE = 500
# The tables a commit reads, kept in memory while this instance writes.
_MIRRORED: tuple[Table, ...] = ("meta", "licence", "licence_history", "tokens", "endings")
# Capacity is measured (one Status call) every this many commits, and at load.
_MEASURE_EVERY = 64


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    # Client URLs of the etcd members: "host:port", "http://host:port" or "https://...".
    endpoints: tuple[str, ...]
    site: str = "default"
    # TLS: the CA that signed the members' certificates, and this client's certificate.
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    # Seconds one etcd call may take.
    timeout: float = 5.0
    # etcd's --max-txn-ops on the cluster (one group commit is one transaction).
    max_txn_ops: int = 1024
    # etcd's --quota-backend-bytes on the cluster: the store's ceiling.
    quota_bytes: int = 2 << 30
    # Share of the quota kept for what frees state (as store.reserve for LMDB).
    reserve: float = 0.1

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ConfigError("cluster.etcd: at least one etcd endpoint is needed")
        if not _SITE.fullmatch(self.site):
            raise ConfigError(
                f"cluster.site = {self.site!r}: use letters, digits, '.', '_' or '-' "
                "(at most 63, starting with a letter or digit)"
            )
        if (self.cert is None) != (self.key is None):
            raise ConfigError("cluster: give both the client certificate and its key, or none")
        if self.max_txn_ops < 64:
            raise ConfigError(f"cluster.max_txn_ops = {self.max_txn_ops}: at least 64")

    @property
    def prefix(self) -> bytes:
        """Where the site's seat table lives (every table under it)."""
        return f"/seatd/{self.site}/store/".encode()

    @property
    def leader_key(self) -> bytes:
        """The site's leader key (seatd.cluster's election; beside the table, not in it)."""
        return f"/seatd/{self.site}/leader".encode()

    @property
    def tls(self) -> bool:
        return self.ca is not None or any(e.startswith("https://") for e in self.endpoints)


@dataclass(frozen=True, slots=True)
class Fence:
    """Leadership as etcd holds it: the leader key and the revision that created it."""

    key: bytes
    revision: int


def _target(endpoint: str) -> str:
    return endpoint.split("://", 1)[-1].rstrip("/")


def _credentials(config: EtcdConfig) -> grpc.ChannelCredentials:
    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path is not None else None

    try:
        return grpc.ssl_channel_credentials(
            root_certificates=read(config.ca),
            private_key=read(config.key),
            certificate_chain=read(config.cert),
        )
    except OSError as exc:
        raise ConfigError(f"cluster: cannot read a TLS file: {exc}") from exc


def channel(config: EtcdConfig, endpoint: str) -> grpc.Channel:
    """A blocking channel to one etcd member, with the cluster's TLS settings."""
    if config.tls:
        return grpc.secure_channel(_target(endpoint), _credentials(config))
    return grpc.insecure_channel(_target(endpoint))


def _all_members(config: EtcdConfig) -> str | None:
    """One gRPC target for every member when they are all IPv4 addresses: gRPC's
    pick_first then moves to the next member when the one in use goes away."""
    hosts = [_target(e) for e in config.endpoints]
    if all(re.fullmatch(r"\d+\.\d+\.\d+\.\d+:\d+", h) for h in hosts):
        return "ipv4:" + ",".join(hosts)
    return None


def _members_target(config: EtcdConfig, endpoint: str | None) -> str:
    return _target(endpoint) if endpoint else _all_members(config) or _target(config.endpoints[0])


def aio_channel(config: EtcdConfig, endpoint: str | None = None) -> grpc.aio.Channel:
    """An asyncio channel to etcd, with the cluster's TLS settings: to `endpoint`, or when
    None to every member (IPv4 endpoints) or else the first one."""
    target = _members_target(config, endpoint)
    if config.tls:
        return grpc.aio.secure_channel(target, _credentials(config))
    return grpc.aio.insecure_channel(target)


def members_channel(config: EtcdConfig) -> grpc.Channel:
    """A blocking channel to etcd as `aio_channel(config)` connects, for a thread."""
    target = _members_target(config, None)
    if config.tls:
        return grpc.secure_channel(target, _credentials(config))
    return grpc.insecure_channel(target)


def range_end(prefix: bytes) -> bytes:
    """The end of etcd's range of every key starting with `prefix`."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


class Link:
    """The etcd members, one blocking channel each; a call goes to the member that answered
    last, and a read moves on to the next member when that one is unreachable."""

    def __init__(self, config: EtcdConfig) -> None:
        self.config = config
        self._channels = [channel(config, e) for e in config.endpoints]
        self._kv = [rpc_pb2_grpc.KVStub(c) for c in self._channels]
        self._maintenance = [rpc_pb2_grpc.MaintenanceStub(c) for c in self._channels]
        self._current = 0

    def _call(self, use: Callable[[int], _T], *, retry: bool) -> _T:
        tries = len(self._channels) if retry else 1
        for attempt in range(tries):
            i = (self._current + attempt) % len(self._channels)
            try:
                result = use(i)
            except grpc.RpcError as exc:
                code = exc.code()
                if attempt + 1 < tries and code in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    continue
                # The next call starts from another member: this one may be the cause.
                self._current = (i + 1) % len(self._channels)
                raise _failed(exc) from exc
            self._current = i
            return result
        raise AssertionError("unreachable")

    def range(self, request: Any, *, retry: bool = True) -> Any:
        timeout = self.config.timeout
        return self._call(lambda i: self._kv[i].Range(request, timeout=timeout), retry=retry)

    def txn(self, request: Any) -> Any:
        """Never sent twice: a transaction whose answer was lost may have committed."""
        timeout = self.config.timeout
        return self._call(lambda i: self._kv[i].Txn(request, timeout=timeout), retry=False)

    def status(self) -> Any:
        timeout = self.config.timeout
        return self._call(
            lambda i: self._maintenance[i].Status(rpc_pb2.StatusRequest(), timeout=timeout),
            retry=True,
        )

    def compact(self, revision: int) -> None:
        timeout = self.config.timeout
        self._call(
            lambda i: self._kv[i].Compact(
                rpc_pb2.CompactionRequest(revision=revision), timeout=timeout
            ),
            retry=True,
        )

    def revision(self) -> int:
        """etcd's current revision: read at it, several ranges see one state."""
        return int(self.range(rpc_pb2.RangeRequest(key=b"\0", count_only=True)).header.revision)

    def scan(self, start: bytes, end: bytes, revision: int = 0) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every key in [start, end), in pages, at `revision` (0: at the
        first page's)."""
        while True:
            page = self.range(
                rpc_pb2.RangeRequest(key=start, range_end=end, limit=_PAGE, revision=revision)
            )
            revision = revision or page.header.revision
            for kv in page.kvs:
                yield kv.key, kv.value
            if not page.more or not page.kvs:
                return
            start = page.kvs[-1].key + b"\0"

    def close(self) -> None:
        for c in self._channels:
            c.close()


def _failed(exc: grpc.RpcError) -> StorageFailed:
    details = exc.details() or ""
    if "too many operations in txn request" in details:
        return StorageFailed(
            f"etcd refused a transaction this large ({details})",
            "Raise etcd's --max-txn-ops to at least cluster.max_txn_ops",
        )
    if "database space exceeded" in details:
        return StorageFailed(
            f"etcd is full ({details})",
            "Raise etcd's --quota-backend-bytes, compact and defragment etcd, "
            "then disarm the NOSPACE alarm (`etcdctl alarm disarm`)",
        )
    return StorageFailed(f"etcd: {exc.code().name}: {details}", ADVICE)


class Keys:
    """Where each record of one site lives in etcd."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    def table(self, table: Table) -> bytes:
        return self.prefix + table.encode() + b"/"

    def of(self, table: Table, key: bytes) -> bytes:
        return self.table(table) + (key.hex().encode() if table in NUMBERED else key)

    def record_key(self, table: Table, etcd_key: bytes) -> bytes:
        rest = etcd_key[len(self.table(table)) :]
        if table not in NUMBERED:
            return rest
        try:
            return bytes.fromhex(rest.decode())
        except ValueError:
            raise StoreDamaged(
                f"etcd key {etcd_key!r} is not a numbered {table} record; {ADVICE}"
            ) from None


class _Read:
    """A `Reader` over every table but the journal, read at one etcd revision."""

    def __init__(self, link: Link, keys: Keys) -> None:
        self.tables: dict[Table, dict[bytes, bytes]] = {}
        revision = link.revision()
        for table in TABLES:
            if table != "journal":
                start = keys.table(table)
                self.tables[table] = {
                    keys.record_key(table, k): v
                    for k, v in link.scan(start, range_end(start), revision)
                }

    def get(self, table: Table, key: bytes) -> bytes | None:
        return self.tables[table].get(key)

    def items(self, table: Table) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.tables[table].items())


class EtcdStore:
    """The seat table of one site in etcd (see the module docstring)."""

    path: Path | None = None

    def __init__(
        self, config: EtcdConfig, *, fence: Fence | None = None, create: bool = True
    ) -> None:
        """Open the site's table; an empty prefix gets a new one (a first start) when
        `create`. A prefix holding records but no table is refused, never filled."""
        self.config = config
        self.keys = Keys(config.prefix)
        self._link = Link(config)
        self._fence = fence
        # Three writes an event at most (a session, its journal entry, a kept ending).
        self.max_batch_events = max(1, (config.max_txn_ops - 8) // 3)
        try:
            self.created = self._open(create)
            self._mirror: dict[Table, dict[bytes, bytes]] = {}
            self._head = self.recorded_head()
            self._sessions = 0
            self._commits = 0
            self.capacity = self._measure()
        except BaseException:
            self._link.close()
            raise

    @property
    def where(self) -> str:
        return f"etcd {','.join(self.config.endpoints)} {self.config.prefix.decode()}"

    def set_fence(self, fence: Fence | None) -> None:
        """Write as the leader holding `fence` from now on (None: refuse every commit).
        Call `load` after taking leadership: the table may have moved meanwhile."""
        self._fence = fence

    def _open(self, create: bool) -> bool:
        meta = self.keys.table("meta")
        found = self._link.range(rpc_pb2.RangeRequest(key=self.keys.of("meta", b"base_id")))
        if not found.kvs:
            held = self._link.range(
                rpc_pb2.RangeRequest(
                    key=self.keys.prefix, range_end=range_end(self.keys.prefix), count_only=True
                )
            )
            if held.count or not create:
                raise StoreDamaged(
                    f"{self.where} holds {held.count} records but no seat table (no "
                    f"{meta.decode()}base_id); seatd does not start a new site in its place: "
                    "restore the site (`seatd migrate --to-etcd` from a backup) or remove "
                    f"the prefix on purpose (`etcdctl del --prefix {self.keys.prefix.decode()}`)"
                )
            if self._create():
                return True
        schema = self._link.range(
            rpc_pb2.RangeRequest(key=self.keys.of("meta", b"schema_version"))
        )
        raw = schema.kvs[0].value if schema.kvs else b""
        found_schema = records.decode_number("meta", b"schema_version", raw)
        if found_schema != records.SCHEMA_VERSION:
            raise StateError(
                f"the seat table in {self.where} has schema version {found_schema}, this seatd "
                f"reads version {records.SCHEMA_VERSION}: run the seatd version that wrote it"
            )
        return False

    def _create(self) -> bool:
        """A new site, unless another instance made one meanwhile (False then)."""
        base_id = str(10**16 + secrets.randbelow(9 * 10**16))
        meta = {
            b"base_id": base_id.encode(),
            b"installation_secret": secrets.token_urlsafe(32).encode(),
            b"schema_version": str(records.SCHEMA_VERSION).encode(),
            b"next_session_id": b"1",
            b"journal_head": records.encode_chain_point(0, journal.GENESIS),
        }
        done = self._link.txn(
            rpc_pb2.TxnRequest(
                compare=[empty_prefix(self.keys.prefix)],
                success=[put_op(self.keys.of("meta", k), v) for k, v in meta.items()],
            )
        )
        if done.succeeded:
            log.info("store.created", store=self.where, base_id=base_id)
        return bool(done.succeeded)

    # -- reads -----------------------------------------------------------------------------

    def _get(self, table: Table, key: bytes) -> bytes | None:
        found = self._link.range(rpc_pb2.RangeRequest(key=self.keys.of(table, key)))
        return bytes(found.kvs[0].value) if found.kvs else None

    def _rows(self, table: Table) -> Iterator[tuple[bytes, bytes]]:
        start = self.keys.table(table)
        for k, v in self._link.scan(start, range_end(start)):
            yield self.keys.record_key(table, k), v

    def recorded_head(self) -> tuple[int, str]:
        raw = self._get("meta", b"journal_head")
        if raw is None:
            return 0, journal.GENESIS
        return records.decode_chain_point("meta", b"journal_head", raw)

    def load(self) -> Snapshot:
        """The state to serve, read at one revision; the writer's mirror starts from it."""
        read = _Read(self._link, self.keys)
        snapshot = read_snapshot(read)
        self._mirror = {t: dict(read.tables[t]) for t in _MIRRORED}
        raw = read.get("meta", b"journal_head")
        self._head = (
            records.decode_chain_point("meta", b"journal_head", raw)
            if raw is not None
            else (0, journal.GENESIS)
        )
        self._sessions = len(snapshot.sessions)
        self.capacity = self._measure()
        return snapshot

    def tokens(self) -> list[dict[str, Any]]:
        return [records.decode_token(k, v) for k, v in self._rows("tokens")]

    def licence_history(self) -> list[dict[str, Any]]:
        return [records.decode_history(k, v) for k, v in self._rows("licence_history")]

    def journal_links(self) -> Iterator[journal.Link]:
        for k, v in self._rows("journal"):
            yield journal.Link(records.U64.unpack(k)[0], v)

    def journal_entries(self) -> list[dict[str, Any]]:
        return [records.decode_entry(records.seq_key(link.seq), link.raw) for link in
                self.journal_links()]

    def _journal_end(self, descend: bool) -> int | None:
        start = self.keys.table("journal")
        order = rpc_pb2.RangeRequest.DESCEND if descend else rpc_pb2.RangeRequest.ASCEND
        found = self._link.range(
            rpc_pb2.RangeRequest(
                key=start, range_end=range_end(start), limit=1, sort_order=order, keys_only=True
            )
        )
        if not found.kvs:
            return None
        return int(records.U64.unpack(self.keys.record_key("journal", found.kvs[0].key))[0])

    def journal_span(self) -> tuple[int, int]:
        first = self._journal_end(descend=False)
        if first is None:
            return 1, 0
        return first, self._journal_end(descend=True) or first

    def journal_times(self) -> Generator[tuple[int, datetime], None, None]:
        for link in self.journal_links():
            at = str(records.decode_entry(records.seq_key(link.seq), link.raw)["at"])
            yield link.seq, datetime.fromisoformat(at.replace("Z", "+00:00"))

    def read_journal(
        self, after_seq: int, limit: int, keep: journal.Filter
    ) -> tuple[list[tuple[int, bytes, dict[str, Any]]], bool]:
        found: list[tuple[int, bytes, dict[str, Any]]] = []
        table = self.keys.table("journal")
        start = self.keys.of("journal", records.seq_key(after_seq + 1))
        for k, v in self._link.scan(start, range_end(table)):
            if len(found) == limit:
                return found, True
            key = self.keys.record_key("journal", k)
            entry = records.decode_entry(key, v)
            if keep.matches(entry):
                found.append((int(records.U64.unpack(key)[0]), v, entry))
        return found, False

    def verify_journal(self) -> tuple[int, int | None, int]:
        """As the LMDB store's: the chain from the pruning checkpoint to the recorded head,
        every entry and both points read at one revision."""
        table = self.keys.table("journal")
        revision = self._link.revision()
        links = Paced(
            [
                journal.Link(records.U64.unpack(self.keys.record_key("journal", k))[0], v)
                for k, v in paced(self._link.scan(table, range_end(table), revision))
            ]
        )

        def point(key: bytes) -> tuple[int, str]:
            found = self._link.range(
                rpc_pb2.RangeRequest(key=self.keys.of("meta", key), revision=revision)
            )
            if not found.kvs:
                return 0, journal.GENESIS
            return records.decode_chain_point("meta", key, found.kvs[0].value)

        anchor, head = point(b"journal_checkpoint"), point(b"journal_head")
        last = links[-1].seq if links else 0
        return len(links), journal.first_unproven(links, anchor, head), last

    def backup(self, directory: Path) -> Path:
        """The whole table, read at one revision, as an LMDB data file in `directory`."""
        from seatd.store import migrate  # the LMDB writer; imported late: it imports us

        return migrate.write_lmdb(self.records(), directory)

    def records(self) -> Iterator[tuple[Table, bytes, bytes]]:
        """Every record of the site, table by table, all read at one revision."""
        revision = self._link.revision()
        for table in TABLES:
            start = self.keys.table(table)
            for k, v in self._link.scan(start, range_end(start), revision):
                yield table, self.keys.record_key(table, k), v

    # -- the one write path ------------------------------------------------------------------

    def commit(self, events: Sequence[Event]) -> None:
        """One etcd transaction, fenced; raises Fenced or StorageFailed having changed
        nothing."""
        fence = self._fence
        if fence is None:
            raise Fenced("it does not hold the leadership (no fence)")
        if not self._mirror:
            self.load()
        tx = _Tx(self)
        head = plan.apply(tx, events, self._head)
        ops = tx.requests()
        if len(ops) > self.config.max_txn_ops:
            raise StorageFailed(
                f"this change needs {len(ops)} operations in one etcd transaction, more than "
                f"cluster.max_txn_ops = {self.config.max_txn_ops}",
                "Raise etcd's --max-txn-ops and cluster.max_txn_ops together",
            )
        compare = [
            rpc_pb2.Compare(
                key=fence.key,
                target=rpc_pb2.Compare.CREATE,
                result=rpc_pb2.Compare.EQUAL,
                create_revision=fence.revision,
            ),
            rpc_pb2.Compare(
                key=self.keys.of("meta", b"journal_head"),
                target=rpc_pb2.Compare.VALUE,
                result=rpc_pb2.Compare.EQUAL,
                value=records.encode_chain_point(*self._head),
            ),
        ]
        done = self._link.txn(
            rpc_pb2.TxnRequest(
                compare=compare,
                success=ops,
                failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=fence.key))],
            )
        )
        if not done.succeeded:
            held = done.responses[0].response_range.kvs
            if not held or held[0].create_revision != fence.revision:
                raise Fenced(
                    f"etcd's leader key {fence.key.decode(errors='replace')} "
                    + (
                        f"was created at revision {held[0].create_revision}, not {fence.revision}"
                        if held
                        else "is gone (the leadership lease ended)"
                    )
                )
            raise StorageFailed(
                "the journal's head in etcd is not the one this instance wrote last "
                "(another writer, or an earlier commit whose answer was lost)",
                "The daemon reloads the seat table from etcd; retry",
            )
        self._mirror.update(tx.tables)
        self._head = head
        self._sessions += sum(isinstance(e, Granted) for e in events) - sum(
            isinstance(e, Ended) for e in events
        )
        self._commits += 1
        if any(isinstance(e, JournalPruned) for e in events):
            # Old revisions would keep the pruned entries in etcd's database.
            self._link.compact(done.header.revision)
            self.capacity = self._measure()
        elif self._commits % _MEASURE_EVERY == 0:
            self.capacity = self._measure()

    def _measure(self) -> Capacity:
        status = self._link.status()
        used = int(status.dbSizeInUse or status.dbSize)
        return Capacity(
            used=used,
            map_size=int(status.dbSize),
            ceiling=self.config.quota_bytes,
            reserve=self.config.reserve,
            sessions=self._sessions,
            high_water=int(status.dbSize),
        )

    def close(self) -> None:
        self._link.close()


def put_op(key: bytes, value: bytes) -> Any:
    return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))


def empty_prefix(prefix: bytes) -> Any:
    """A compare that holds while no key under `prefix` exists (each has version >= 1)."""
    return rpc_pb2.Compare(
        key=prefix,
        range_end=range_end(prefix),
        target=rpc_pb2.Compare.VERSION,
        result=rpc_pb2.Compare.EQUAL,
        version=0,
    )


def absent(key: bytes) -> Any:
    """A compare that holds while `key` does not exist."""
    return rpc_pb2.Compare(
        key=key, target=rpc_pb2.Compare.VERSION, result=rpc_pb2.Compare.EQUAL, version=0
    )


class _Tx:
    """One commit as `seatd.store.plan` writes it: reads from the mirror (as changed by this
    commit so far), writes gathered as etcd request ops, one per key (the last wins)."""

    def __init__(self, store: EtcdStore) -> None:
        self._store = store
        self._keys = store.keys
        self.tables: dict[Table, dict[bytes, bytes]] = {}
        self._ops: dict[bytes, Any] = {}
        self._ranges: list[Any] = []

    def _view(self, table: Table) -> dict[bytes, bytes] | None:
        if table not in _MIRRORED:
            return None
        if table not in self.tables:
            self.tables[table] = dict(self._store._mirror.get(table, {}))
        return self.tables[table]

    def _mirrored(self, table: Table) -> dict[bytes, bytes]:
        view = self._view(table)
        if view is None:
            raise AssertionError(f"the {table} table is written, never read, by a commit")
        return view

    def get(self, table: Table, key: bytes) -> bytes | None:
        return self._mirrored(table).get(key)

    def put(self, table: Table, key: bytes, value: bytes) -> None:
        view = self._view(table)
        if view is not None:
            view[key] = value
        etcd_key = self._keys.of(table, key)
        self._ops.pop(etcd_key, None)  # keep the ops in the order of their last write
        self._ops[etcd_key] = put_op(etcd_key, value)

    def append(self, table: Table, key: bytes, value: bytes) -> None:
        self.put(table, key, value)

    def delete(self, table: Table, key: bytes) -> None:
        view = self._view(table)
        if view is not None:
            view.pop(key, None)
        etcd_key = self._keys.of(table, key)
        self._ops.pop(etcd_key, None)
        self._ops[etcd_key] = rpc_pb2.RequestOp(
            request_delete_range=rpc_pb2.DeleteRangeRequest(key=etcd_key)
        )

    def first(self, table: Table) -> tuple[bytes, bytes] | None:
        return next(iter(self._mirrored(table).items()), None)

    def last_key(self, table: Table) -> bytes | None:
        return next(reversed(self._mirrored(table)), None)

    def count(self, table: Table) -> int:
        return len(self._mirrored(table))

    def delete_through(self, table: Table, key: bytes) -> tuple[int, bytes, bytes]:
        """Only the journal is pruned: one range delete, its extent read first."""
        start, end = self._keys.table(table), self._keys.of(table, key) + b"\0"
        link = self._store._link
        counted = link.range(rpc_pb2.RangeRequest(key=start, range_end=end, count_only=True))
        if not counted.count:
            return 0, b"", b""
        last = link.range(
            rpc_pb2.RangeRequest(
                key=start, range_end=end, limit=1, sort_order=rpc_pb2.RangeRequest.DESCEND
            )
        ).kvs[0]
        self._ranges.append(
            rpc_pb2.RequestOp(
                request_delete_range=rpc_pb2.DeleteRangeRequest(key=start, range_end=end)
            )
        )
        return int(counted.count), self._keys.record_key(table, last.key), bytes(last.value)

    def requests(self) -> list[Any]:
        return [*self._ranges, *self._ops.values()]

"""The audit trail: who did what to which resource, from where, and how it ended.

Every state change made for someone (a run started, a role changed, a template published)
and every security event (a login, a refused token) is one `AuditEntry`. A store writes the
entries of a change in the same transaction as the change, so neither exists without the
other; entries are never updated, and only retention removes the oldest (`AuditPruning`,
leaving an anchor the rest verifies from). Each stored entry carries the SHA-256 of its
predecessor (`AuditRecord`), and the store keeps the newest sequence number and hash
(`ChainHead`): an edited entry no longer matches its hash, an inserted or deleted one
breaks the sequence or the links, a deleted tail no longer reaches the head. `verify`
names the first entry where that happens.

Who is acting is ambient, as a logging context is: the web layer, a CLI command or a
trigger sets it (`acting_as`) and the code making the change builds its entry with `entry`.
"""
from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .json_text import dumps_compact

GENESIS = "0" * 64
"""The `prev_hash` of the first entry."""

SUCCESS = "success"
FAILURE = "failure"
DENIED = "denied"


@dataclass(frozen=True, slots=True)
class Acting:
    """Who the code running now acts for: the actor's name, the client's address and the
    request id (None outside a request)."""

    actor: str
    client: str | None = None
    request_id: str | None = None


SYSTEM_ACTING = Acting("system")
_ACTING: ContextVar[Acting] = ContextVar("baseshift_acting", default=SYSTEM_ACTING)


def acting() -> Acting:
    """Who the current code acts for (the server itself when nobody set it)."""
    return _ACTING.get()


@contextlib.contextmanager
def acting_as(who: Acting) -> Iterator[None]:
    """Act for `who` until the block ends (tasks started inside inherit it)."""
    token = _ACTING.set(who)
    try:
        yield
    finally:
        _ACTING.reset(token)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited event. `action` is `area.verb` (`run.start`, `auth.login`); `resource`
    is `kind:name` (`run:20261204-…`, `user:alice`, `template:notify`, its version in
    `detail`); `outcome` is `success`, `failure` or `denied`; `detail` holds a few short
    strings (never a secret)."""

    action: str
    resource: str
    actor: str
    outcome: str = SUCCESS
    client: str | None = None
    request_id: str | None = None
    at: float = 0.0
    detail: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource, "actor": self.actor,
                "outcome": self.outcome, "client": self.client,
                "request_id": self.request_id, "at": self.at, "detail": dict(self.detail)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(str(data["action"]), str(data["resource"]), str(data["actor"]),
                   str(data["outcome"]), data.get("client"), data.get("request_id"),
                   float(data["at"]), {str(k): str(v) for k, v in
                                       (data.get("detail") or {}).items()})


def entry(action: str, resource: str, outcome: str = SUCCESS, *,
          who: Acting | None = None, **detail: str) -> AuditEntry:
    """An entry for `action` on `resource` by whoever the current code acts for, now."""
    who = who or acting()
    return AuditEntry(action, resource, who.actor, outcome, who.client, who.request_id,
                      time.time(), detail)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A stored entry: its place in the chain, its predecessor's hash and its own."""

    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.entry.to_json(), "prev_hash": self.prev_hash,
                "hash": self.hash}


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest entry's sequence number and hash (0 and GENESIS for an empty trail)."""

    seq: int = 0
    hash: str = GENESIS


def entry_hash(seq: int, prev_hash: str, item: AuditEntry) -> str:
    """The hash of an entry at `seq` after `prev_hash`: SHA-256 over canonical JSON."""
    body = dumps_compact({"seq": seq, "prev": prev_hash, **item.to_json()})
    return hashlib.sha256(body.encode()).hexdigest()


def chained(head: ChainHead, entries: Iterable[AuditEntry]
            ) -> tuple[list[AuditRecord], ChainHead]:
    """`entries` as the records that follow `head`, and the new head."""
    records = []
    for item in entries:
        seq = head.seq + 1
        digest = entry_hash(seq, head.hash, item)
        records.append(AuditRecord(seq, item, head.hash, digest))
        head = ChainHead(seq, digest)
    return records, head


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where verification failed: the first entry (by sequence number) that is not what
    the chain says it should be, and why."""

    seq: int
    reason: str


@dataclass(slots=True)
class ChainCheck:
    """Verifies records fed in sequence order, page by page (`feed`), then the head."""

    expected: ChainHead = field(default_factory=ChainHead)
    checked: int = 0
    broken: ChainBreak | None = None

    def feed(self, records: Iterable[AuditRecord]) -> ChainBreak | None:
        for record in records:
            if self.broken is not None:
                break
            self.broken = self._check(record)
            self.expected = ChainHead(record.seq, record.hash)
            self.checked += 1
        return self.broken

    def _check(self, record: AuditRecord) -> ChainBreak | None:
        want = self.expected.seq + 1
        if record.seq > want:
            return ChainBreak(want, f"entry {want} is missing (entry {record.seq} follows "
                              f"entry {self.expected.seq})")
        if record.seq < want:
            return ChainBreak(record.seq, f"entry {record.seq} appears again after entry "
                              f"{self.expected.seq}: one of them was inserted")
        if record.prev_hash != self.expected.hash:
            return ChainBreak(record.seq, f"entry {record.seq} does not link to entry "
                              f"{self.expected.seq}: an entry before it was removed, "
                              "inserted or rewritten")
        if entry_hash(record.seq, record.prev_hash, record.entry) != record.hash:
            return ChainBreak(record.seq, f"entry {record.seq} was edited: its content no "
                              "longer matches its hash")
        return None

    def finish(self, head: ChainHead) -> ChainBreak | None:
        """The verdict, once every record was fed: the last one must be the stored head."""
        if self.broken is None and self.expected != head:
            self.broken = ChainBreak(
                min(self.expected.seq, head.seq) + 1,
                f"the trail ends at entry {self.expected.seq} but the head records entry "
                f"{head.seq}: entries at the end were removed or the head was altered")
        return self.broken


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """A page of the trail, newest first: entries older than `before` (a sequence number,
    the cursor of the previous page) matching every filter given. `resource` matches a
    whole resource (`run:abc`) or, ending in `:`, every resource of a kind (`run:`)."""

    actor: str | None = None
    action: str | None = None
    resource: str | None = None
    client: str | None = None
    since: float | None = None
    until: float | None = None
    before: int | None = None
    limit: int = 50

    def matches(self, record: AuditRecord) -> bool:
        item = record.entry
        return ((self.actor is None or item.actor == self.actor)
                and (self.action is None or item.action == self.action)
                and (self.client is None or item.client == self.client)
                and (self.resource is None or item.resource == self.resource
                     or (self.resource.endswith(":")
                         and item.resource.startswith(self.resource)))
                and (self.since is None or item.at >= self.since)
                and (self.until is None or item.at < self.until)
                and (self.before is None or record.seq < self.before))


@runtime_checkable
class AuditLog(Protocol):
    """The audit trail a store keeps. Entries of a change are passed to the method making
    the change (`audit=`); `append_audit` writes events that change nothing else (a failed
    login, a reload) in a transaction of their own. `audit_database` names the database the
    trail is in, so a template store in the same one writes to it in its own transactions
    (None: only this store writes to it)."""

    @property
    def audit_database(self) -> str | None: ...

    async def append_audit(self, entries: Sequence[AuditEntry]) -> None: ...

    async def audit_page(self, query: AuditQuery) -> list[AuditRecord]:
        """Up to `query.limit` matching records, newest first."""
        ...

    async def audit_records(self, after: int, limit: int) -> list[AuditRecord]:
        """Up to `limit` records with `seq > after`, oldest first (for verification)."""
        ...

    async def audit_head(self) -> ChainHead: ...


PRUNE = "audit.prune"
"""The action of the entry a pruning of the trail appends (its detail: `anchor_seq`,
`anchor_hash`, `removed`)."""


@runtime_checkable
class AuditPruning(Protocol):
    """A trail whose oldest entries can be removed (retention): `prune_audit` removes the
    entries older than `before` (epoch seconds; a prefix of the chain), records the last
    removed one as the anchor (`audit_anchor`: its seq and hash, where verification then
    starts), and appends an `audit.prune` entry naming the anchor, all in one transaction;
    it returns how many went (`dry_run`: would go)."""

    async def audit_anchor(self) -> ChainHead:
        """Where the kept trail starts (0 and GENESIS when never pruned)."""
        ...

    async def prune_audit(self, before: float, dry_run: bool = False) -> int: ...


def prune_entry(anchor: ChainHead, removed: int) -> AuditEntry:
    """The entry recording that the entries up to `anchor` were removed."""
    return entry(PRUNE, "audit:trail", anchor_seq=str(anchor.seq), anchor_hash=anchor.hash,
                 removed=str(removed))


PAGE = 1000


async def verify(log: AuditLog) -> tuple[int, ChainBreak | None]:
    """Check the whole trail: how many entries were read, and the first break (None when
    intact). A pruned trail is checked from its anchor, which must be the one the newest
    `audit.prune` entry names."""
    anchor = await log.audit_anchor() if isinstance(log, AuditPruning) else ChainHead()
    check = ChainCheck(expected=anchor)
    head = await log.audit_head()  # read first: entries appended meanwhile come after it
    if anchor.seq:
        pruned = await log.audit_page(AuditQuery(action=PRUNE, limit=1))
        named = pruned[0].entry.detail if pruned else {}
        if (named.get("anchor_seq"), named.get("anchor_hash")) != (str(anchor.seq),
                                                                   anchor.hash):
            return 0, ChainBreak(anchor.seq, f"the trail starts after entry {anchor.seq}, "
                                 "which no audit.prune entry names: the anchor was altered")
    async for page in _pages(log, head.seq, anchor.seq):
        if check.feed(page) is not None:
            return check.checked, check.broken
    if check.finish(head) is None:
        beyond = await log.audit_records(head.seq, 1)
        if beyond and beyond[0].seq > (await log.audit_head()).seq:
            check.broken = ChainBreak(beyond[0].seq, f"entry {beyond[0].seq} lies beyond "
                                      "the head: it was inserted outside the store")
    return check.checked, check.broken


async def _pages(log: AuditLog, upto: int, after: int = 0
                 ) -> AsyncIterator[list[AuditRecord]]:
    while True:
        page = [r for r in await log.audit_records(after, PAGE) if r.seq <= upto]
        if not page:
            return
        yield page
        after = page[-1].seq


async def record(store: object, entries: Sequence[AuditEntry]) -> None:
    """Append events that change nothing else to `store`'s trail, when it keeps one."""
    if entries and isinstance(store, AuditLog):
        await store.append_audit(entries)


def shares_trail(store: object, other: object) -> bool:
    """Whether `other` (a template store) writes into `store`'s audit trail, so entries of
    its changes can go in the same transaction as they."""
    key = getattr(other, "audit_database", None)
    return key is not None and isinstance(store, AuditLog) and store.audit_database == key

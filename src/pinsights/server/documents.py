"""The serving path's view of the store: stored bytes for a request, through an LRU of hot documents.

Documents are precomputed by the build, so answering is a lookup: resolve the snapshot from the
manifest (one ``stat``), then the LRU, then — on a miss only — a keyed read of the snapshot's SQLite
file (formats 2 and 3), on the event loop: it costs less than handing it to a worker thread. Only a store
that still retains a format-1 (DuckDB) snapshot, where a read is a column scan, reads in a worker
thread. Answers that are errors (unknown account, missing snapshot) are cached as well, so scanning
for accounts is as cheap as reading one. The LRU admits an answer when it is read a second time
(:mod:`~pinsights.server.sightings`): most reads of a platform's API are never repeated, and a
document read once then neither pushes a hot one out nor leaves garbage behind.

Consistency: every answer comes from one snapshot file. Cache keys name the snapshot files that the
answer was read from, so a newly published snapshot is picked up by the next request (new key) and
its entries never mix with the old one's. A snapshot file that a concurrent publish unlinks between
reading the manifest and opening the file is retried on the new manifest.

An account is *known* when it is in the newest snapshot; an unknown account is answered exactly like
a forbidden one (403/29). A known account without the requested snapshot, audience or category gets
404. The ad accounts' operations read the newest snapshot's accounts table, a page or an account at a
time (a range or keyed read), so listing and insights agree on its date.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import partial
from typing import Any, TypeVar

from anyio import to_thread

from pinsights.contract import DEFINITION_OF_INSIGHT_TYPE, AudienceInsightType
from pinsights.server.accounts import account_json, account_order, page_body
from pinsights.server.errors import AccountForbidden, ApiError, NotFound
from pinsights.server.sightings import Sightings
from pinsights.server.storefiles import RECHECK_AFTER
from pinsights.store import MANIFEST, Store
from pinsights.store.snapshot import KEYED_FORMATS, Snapshot, SnapshotFileGone

T = TypeVar("T")
#: A snapshot file vanishing under us can only happen once per publish; more means something else.
OPEN_ATTEMPTS = 3
_UNREAD = (-1, -1, -1)
#: The insight type whose document is shared (not an account's own).
_SHARED = AudienceInsightType.PINTEREST_TOTAL_AUDIENCE


class Documents:
    """Answers of the three data operations, as the exact bytes to send."""

    def __init__(self, store: Store, cache_size: int = 4096) -> None:
        self.store = store
        self._manifest = str(store.root / MANIFEST)
        self._manifest_stamp: tuple[int, int, int] | None = None
        self._manifest_checked = -1.0
        self._snapshot_files: tuple[tuple[dt.date, str], ...] = ()
        #: Whether a miss is read on the event loop: when every snapshot is of the keyed format
        #: (a read costs less than handing it to a worker thread); format-1 files, which scan,
        #: are read in a worker thread.
        self._inline = True
        self._newest: Snapshot | None = None
        self._cache: OrderedDict[Hashable, bytes | ApiError] = OrderedDict()
        self._cache_size = cache_size
        #: Answers read once (by key hash): the LRU admits an answer when it is read again.
        self._sightings = Sightings(max(cache_size, 1) * 4)
        #: Answers found in the LRU, and read from the store (the metrics report them).
        self.hits = 0
        self.misses = 0

    # --- the operations ------------------------------------------------------------------------

    async def insights(
        self, ad_account_id: str, insight_type: AudienceInsightType, date: dt.date | None
    ) -> bytes:
        """``audience_insights_get``: the document of the newest snapshot, or of ``date``'s.

        The server asks :meth:`cached_insights` first, so this is nearly always a miss: the LRU
        is looked up once more (an answer cached meanwhile, or an error), not twice.
        """
        key = self._insights_key(ad_account_id, insight_type, date)
        return await self._cached(key, self._read_insights, ad_account_id, insight_type, date)

    def cached_insights(
        self, ad_account_id: str, insight_type: AudienceInsightType, date: dt.date | None
    ) -> bytes | None:
        """The usual request, answered by a plain call (no coroutine): the document from the LRU,
        or — on a miss, when reads run on the event loop (formats 2 and 3) — read, remembered and
        returned at once; an error answer is raised. None only when the read has to go to a
        worker thread (a format-1 snapshot is retained): then the server awaits :meth:`insights`.

        A miss is the usual case for a platform's API (each advertiser reads its own few
        documents now and then), so it gets the same single key and LRU lookup as a hit.
        """
        key = self._insights_key(ad_account_id, insight_type, date)
        answer = self._cache.get(key)
        if type(answer) is bytes:
            self.hits += 1
            self._cache.move_to_end(key)
            return answer
        if not self._inline:
            return None
        if answer is None and date is None and insight_type is not _SHARED:
            # the usual cold read, straight to the newest snapshot's own document (the general
            # path below answers the rest: an unknown account, an error, a publish under way)
            newest, files = self._newest, self._snapshot_files
            if newest is not None and files and newest.info.file == files[0][1]:
                try:
                    body = newest.own_document(ad_account_id, insight_type._value_)
                except SnapshotFileGone:
                    body = None
                if body is not None:
                    self.misses += 1
                    self._remember(key, body)
                    return body
        return self._settle(key, answer, self._read_insights, ad_account_id, insight_type, date)

    def _insights_key(
        self, ad_account_id: str, insight_type: AudienceInsightType, date: dt.date | None
    ) -> Hashable:
        files = self._files()
        target = files[0][1] if files and date is None else _file_of(files, date)
        # plain strings only (the type's value, not the enum member): a key the LRU keeps is then
        # a tuple the garbage collector stops tracking, as a cold read leaves one behind each time
        newest = files[0][1] if files else None
        return ("insights", newest, target, ad_account_id, insight_type._value_)

    async def definitions(self, ad_account_id: str) -> bytes:
        """``audience_insights_scope_and_type_get``: qualifying audiences of every retained snapshot."""
        key = ("definitions", tuple(file for _, file in self._files()), ad_account_id)
        return await self._cached(key, self._read_definitions, ad_account_id)

    async def category(
        self, ad_account_id: str, insight_type: AudienceInsightType | None, category_id: str
    ) -> bytes:
        """``audiences_insights_category_list``: the subcategories of one category, newest snapshot.

        ``insight_type`` None names an audience that is not offered: 404 for a known account.
        """
        files = self._files()
        key = ("category", files[0][1] if files else None, ad_account_id, insight_type, category_id)
        return await self._cached(
            key, self._read_category, ad_account_id, insight_type, category_id
        )

    async def account(self, ad_account_id: str) -> bytes:
        """``ad_accounts/get``: the account as the newest snapshot names it (a keyed read)."""
        files = self._files()
        key = ("account", files[0][1] if files else None, ad_account_id)
        return await self._cached(key, self._read_account, ad_account_id)

    async def accounts_page(
        self, covered: frozenset[str] | None, after: str | None, page_size: int
    ) -> bytes:
        """``ad_accounts/list``: a page of the newest snapshot's accounts that a token covers:
        a range read of the list for a ``*`` token, keyed reads of its accounts for the others."""
        self._files()
        if self._inline:
            return self._read_here(self._read_accounts_page, covered, after, page_size)
        return await self._read_in_thread(self._read_accounts_page, covered, after, page_size)

    def newest_date(self) -> dt.date | None:
        files = self._files()
        return files[0][0] if files else None

    # --- caching ---------------------------------------------------------------------------------

    def _files(self) -> tuple[tuple[dt.date, str], ...]:
        """(date, file) of the published snapshots, newest first.

        Asked of the store only when the manifest's stat changes: the store's own check builds
        paths and takes a lock, which is most of a request's cost when the answer is cached. And
        the stat itself is skipped within ``RECHECK_AFTER`` of the last one: under load that
        spares most stats, while a publish (which fsyncs, taking longer) is still seen at once.
        """
        now = time.monotonic()
        if now - self._manifest_checked < RECHECK_AFTER:
            return self._snapshot_files
        self._manifest_checked = now
        try:
            st = os.stat(self._manifest)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._manifest_stamp:
            # stamp first, read second: a change in between is seen again on the next call
            self._manifest_stamp = stamp
            try:
                infos = self.store.snapshots()
            except Exception:
                self._manifest_stamp, self._manifest_checked = _UNREAD, -1.0  # ask again next time
                raise
            self._snapshot_files = tuple((info.date, info.file) for info in infos)
            self._inline = all(info.format in KEYED_FORMATS for info in infos)
        return self._snapshot_files

    async def _cached(self, key: Hashable, read: Callable[..., bytes], *args: Any) -> bytes:
        """The answer under ``key``, from the LRU or else ``read(*args)`` (on the event loop, or
        in a worker thread while a format-1 snapshot is retained)."""
        answer = self._cache.get(key)
        if answer is not None or self._inline:
            return self._settle(key, answer, read, *args)
        self.misses += 1
        try:
            answer = await self._read_in_thread(read, *args)
        except (AccountForbidden, NotFound) as error:
            answer = error
        self._remember(key, answer)
        return _unwrapped(answer)

    def _settle(
        self,
        key: Hashable,
        answer: bytes | ApiError | None,
        read: Callable[..., bytes],
        *args: Any,
    ) -> bytes:
        """``answer`` (what the LRU holds under ``key``) counted as a hit, or else — None —
        ``read(*args)`` here and now, remembered: the keyed reads of formats 2 and 3 run on the event
        loop. A cached error is raised."""
        if answer is None:
            self.misses += 1
            try:
                answer = self._read_here(read, *args)
            except (AccountForbidden, NotFound) as error:
                answer = error
            self._remember(key, answer)
        else:
            self.hits += 1
            self._cache.move_to_end(key)
        return _unwrapped(answer)

    def _read_here(self, read: Callable[..., bytes], *args: Any) -> bytes:
        """``read(*args)`` on the event loop, again on the new manifest if a publish unlinked
        the file it opened."""
        try:  # the usual case, without the retry's partials (a cold read's every µs counts)
            return read(*args)
        except SnapshotFileGone:
            self._forget_snapshots()
        return _retrying(partial(read, *args), self._forget_snapshots)

    async def _read_in_thread(self, read: Callable[..., bytes], *args: Any) -> bytes:
        """``read(*args)`` in a worker thread (format-1 files, whose reads scan), with the retry."""
        return await to_thread.run_sync(
            partial(_retrying, partial(read, *args), self._forget_snapshots)
        )

    def _remember(self, key: Hashable, answer: bytes | ApiError) -> None:
        """Keep an answer read from the store, from its second reading on: a document read once
        (the usual cold read) then never pushes a hot one out of the LRU, and leaves nothing
        behind for the garbage collector (:mod:`~pinsights.server.sightings`)."""
        if self._cache_size <= 0 or not self._sightings.again(key):
            return
        self._cache[key] = answer
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    # --- reading the store (on the event loop, or worker threads for format-1 files) -------------

    def _latest(self) -> Snapshot | None:
        """The newest snapshot, kept open between requests while the manifest names it (asking
        the store each time costs a stat and a lock, more than the keyed read itself)."""
        files = self._snapshot_files
        newest = self._newest
        if newest is None or not files or newest.info.file != files[0][1]:
            newest = self._newest = self.store.latest()
        return newest

    def _forget_snapshots(self) -> None:
        """A read found its file gone (a publish unlinked it): resolve from the manifest again."""
        self._newest = None

    def _newest_with(self, ad_account_id: str) -> Snapshot:
        newest = self._latest()
        if newest is None or not newest.has_account(ad_account_id):
            raise AccountForbidden()
        return newest

    def _read_account(self, ad_account_id: str) -> bytes:
        newest = self._latest()
        record = None if newest is None else newest.account(ad_account_id)
        if record is None:
            raise AccountForbidden()
        return account_json(record)

    def _read_accounts_page(
        self, covered: frozenset[str] | None, after: str | None, page_size: int
    ) -> bytes:
        newest = self._latest()
        if newest is None:
            return page_body([], page_size)
        if covered is None:
            return page_body(newest.accounts_after(after, page_size + 1), page_size)
        listed = sorted(covered, key=account_order)
        if after is not None:
            listed = listed[
                bisect_right([account_order(a) for a in listed], account_order(after)) :
            ]
        chosen = []
        for ad_account_id in listed:  # keyed reads, in list order, until the page is full
            record = newest.account(ad_account_id)
            if record is not None:
                chosen.append(record)
                if len(chosen) > page_size:
                    break
        return page_body(chosen, page_size)

    def _read_insights(
        self, ad_account_id: str, insight_type: AudienceInsightType, date: dt.date | None
    ) -> bytes:
        newest = self._latest()
        if newest is not None and (date is None or date == newest.date):
            # the usual request: the account check and the document in one keyed read
            known, body = newest.account_document(ad_account_id, insight_type.value)
            if not known:
                raise AccountForbidden()
            snapshot = newest
        else:
            snapshot = self._newest_with(ad_account_id)
            if date is not None and date != snapshot.date:
                older = self.store.snapshot(date)
                if older is None:
                    raise NotFound(f"No snapshot for {date.isoformat()}.")
                snapshot = older
            body = snapshot.document(ad_account_id, insight_type.value)
        if body is None:
            raise NotFound(f"No insights for this ad account on {snapshot.date.isoformat()}.")
        return body

    def _read_definitions(self, ad_account_id: str) -> bytes:
        self._newest_with(ad_account_id)
        items = []
        for snapshot in self.store.all_snapshots():
            qualifying = set(snapshot.qualifying_audiences(ad_account_id))
            for insight_type, (scope, audience_type) in DEFINITION_OF_INSIGHT_TYPE.items():
                if insight_type.value in qualifying:
                    items.append(
                        {
                            "date": snapshot.date.isoformat(),
                            "scope": scope.value,
                            "type": audience_type.value,
                        }
                    )
        return json.dumps({"items": items}, separators=(",", ":")).encode()

    def _read_category(
        self, ad_account_id: str, insight_type: AudienceInsightType | None, category_id: str
    ) -> bytes:
        snapshot = self._newest_with(ad_account_id)
        if insight_type is None:
            raise NotFound("No such audience.")
        body = snapshot.category_items(ad_account_id, insight_type.value, category_id)
        if body is None:
            raise NotFound(f"No category {category_id}.")
        return body


def _unwrapped(answer: bytes | ApiError) -> bytes:
    """A cached answer's bytes, or its error raised (a fresh instance each time: re-raising one
    object would keep growing its traceback)."""
    if isinstance(answer, ApiError):
        raise type(answer)(answer.message)
    return answer


def _file_of(files: tuple[tuple[dt.date, str], ...], date: dt.date | None) -> str | None:
    return next((file for day, file in files if day == date), None)


def _retrying(read: Callable[[], T], forget: Callable[[], None]) -> T:
    """Run ``read``, again if a concurrent publish unlinked the snapshot file it was opening."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return read()
        except SnapshotFileGone:
            forget()
            if attempt == OPEN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")

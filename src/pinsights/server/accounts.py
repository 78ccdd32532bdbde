"""The ad accounts of a snapshot as ``ad_accounts/list`` and ``ad_accounts/get`` serve them.

Accounts are listed in id order (:func:`account_order`). A page is read from the snapshot as it is
asked for, never the whole list: a token for every account (``*``) gets a range of the snapshot's
accounts after the bookmark (:meth:`pinsights.store.Snapshot.accounts_after`), a token for some
accounts the keyed reads of its own accounts, in order, until the page is full.

Pagination is by key, not by offset: a bookmark says "after this id", so pages neither repeat nor
skip an account when a newer snapshot is published between two pages (accounts it adds or drops are
seen, or not, where they fall). The bookmark is opaque to clients (base64 of a versioned text) and
harmless when forged: whatever it says, a page holds only accounts the token covers, so it can move
a caller within its own accounts and nowhere else — it reveals no account's existence. Anything that
is not a bookmark this server could have given is 400/1.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from pinsights.contract import AD_ACCOUNT_ID_MAX_LENGTH
from pinsights.server.errors import InvalidParameter
from pinsights.store.snapshot import AccountRecord

#: ``AdAccount.name``'s maxLength in the contract (in characters); longer names are cut to it.
NAME_MAX_LENGTH = 256
PAGE_SIZE_DEFAULT = 25
PAGE_SIZE_MAX = 250
_BOOKMARK_PREFIX = "after:"
_ACCOUNT_ID = re.compile(rf"[0-9]{{1,{AD_ACCOUNT_ID_MAX_LENGTH}}}", re.ASCII)
_NOT_A_BOOKMARK = "is not a bookmark given by this server"


def account_order(ad_account_id: str) -> tuple[int, str]:
    """Accounts are listed by length, then as text: a total order of digit strings, which is
    their order as numbers when they have no leading zeros (no 18-digit conversions needed)."""
    return (len(ad_account_id), ad_account_id)


def account_json(record: AccountRecord) -> bytes:
    """The ``AdAccount`` of a record: ``id`` always, the rest when the snapshot has it."""
    document: dict[str, str] = {"id": record.ad_account_id}
    if record.name is not None:
        document["name"] = record.name[:NAME_MAX_LENGTH]
    if record.country is not None:
        document["country"] = record.country
    if record.currency is not None:
        document["currency"] = record.currency
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def encode_bookmark(after: str) -> str:
    return base64.urlsafe_b64encode((_BOOKMARK_PREFIX + after).encode()).decode().rstrip("=")


def decode_bookmark(bookmark: str) -> str:
    """The account id a bookmark continues after; 400/1 naming ``bookmark`` for anything else."""
    try:
        text = base64.urlsafe_b64decode(bookmark + "=" * (-len(bookmark) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameter("bookmark", _NOT_A_BOOKMARK) from None
    after = text.removeprefix(_BOOKMARK_PREFIX)
    if after == text or not _ACCOUNT_ID.fullmatch(after):
        raise InvalidParameter("bookmark", _NOT_A_BOOKMARK)
    return after


def page_body(records: list[AccountRecord], size: int) -> bytes:
    """The list operation's body from up to ``size + 1`` accounts in list order: the first
    ``size`` of them, and a bookmark after the last when there is one more."""
    more = len(records) > size
    chosen = records[:size]
    bookmark = json.dumps(encode_bookmark(chosen[-1].ad_account_id) if more else None).encode()
    items = b",".join(account_json(record) for record in chosen)
    return b'{"items":[%s],"bookmark":%s}' % (items, bookmark)

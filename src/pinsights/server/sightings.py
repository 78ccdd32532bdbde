"""Admission for the server's per-request caches: a request is worth remembering once it comes again.

The serving path keeps what it worked out for a request — its checked parameters, its document in
the LRU, its access-log line's parts — so that the next identical request skips the work. For a
platform's API most requests are never repeated (each advertiser reads its own few documents now and
then), and keeping each of them cost more than it saved: every kept entry is a few objects that the
garbage collector must then track and collect (a cold request left ~7 behind, a hot one none, and
the collections cost a cold request ~5 µs and stalled the worker now and then), and a document kept
on its first read pushed a hot one out of the LRU.

So a cache admits a key on its second sighting: the first one leaves only the key's hash in a set
(an int, which the collector never sees); hashes are forgotten all at once when the set is full.
Two keys with the same hash let the second in at its first sighting: harmless, it is only kept.
"""

from __future__ import annotations

from collections.abc import Hashable


class Sightings:
    """Keys seen once, by hash, up to ``size`` of them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: set[int] = set()

    def again(self, key: Hashable) -> bool:
        """Whether ``key`` was seen before (since the set was last emptied); notes it if not."""
        sighting = hash(key)
        seen = self._seen
        if sighting in seen:
            return True
        if len(seen) >= self.size:
            seen.clear()
        seen.add(sighting)
        return False

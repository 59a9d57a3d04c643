"""A one-item mailbox that hands the newest item from one pipeline stage to the next.

A slow consumer never makes a queue grow: a new item replaces one that was not yet taken (and that
counts as a drop), so latency stays bounded. For batch work (every frame, in order) the producer
puts with ``block=True`` and waits until the consumer took the previous item instead.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most one unread item; thread-safe (one condition variable guards everything).

    Closing the slot wakes every waiter. An item put before :meth:`close` can still be taken; after
    that, :meth:`get` returns None at once.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._unread = False
        self._latest: T | None = None
        self._dropped = 0
        self._closed = False

    def put(self, item: T, block: bool = False, timeout: float | None = None) -> bool:
        """Offers an item to the consumer.

        Args:
            item: the new item.
            block: False: the newest item wins and an unread one is overwritten (a drop).
                True: wait until the consumer took the previous item, so nothing is dropped.
            timeout: with ``block``, the most seconds to wait; None waits as long as it takes.

        Returns:
            True when an unread item was overwritten (dropped), False otherwise (also when the slot
            is closed, in which case the item is discarded).

        Raises:
            TimeoutError: ``block`` is set and the previous item was not taken within ``timeout``;
                the slot is left unchanged.
        """
        with self._cond:
            if block and not self._cond.wait_for(lambda: not self._unread or self._closed, timeout):
                raise TimeoutError("The consumer did not take the previous item in time.")
            if self._closed:
                return False
            dropped = self._unread
            if dropped:
                self._dropped += 1
            self._item = item
            self._latest = item
            self._unread = True
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float | None = None) -> T | None:
        """Takes the item that was not yet taken, waiting for one if needed.

        Args:
            timeout: the most seconds to wait; None waits until an item arrives or the slot closes.

        Returns:
            The item, or None on timeout or when the slot is closed and holds no unread item.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._unread or self._closed, timeout)
            if not self._unread:
                return None
            item = self._item
            self._item = None
            self._unread = False
            self._cond.notify_all()
            return item

    def peek(self) -> T | None:
        """The newest item ever put, taken or not, without taking it; None before the first."""
        with self._cond:
            return self._latest

    @property
    def pending(self) -> bool:
        """Whether an item waits that was not yet taken."""
        with self._cond:
            return self._unread

    @property
    def dropped(self) -> int:
        """How many items were overwritten before anyone took them."""
        with self._cond:
            return self._dropped

    def close(self) -> None:
        """Closes the slot and wakes every waiting producer and consumer; safe to call twice."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        with self._cond:
            return self._closed

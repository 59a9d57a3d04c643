"""A small mailbox that hands the newest items from one pipeline stage to the next.

A slow consumer never makes a queue grow: it holds at most ``depth`` unread items (one by
default), and a new item beyond that replaces the oldest one not yet taken (which counts as a
drop), so latency stays bounded. A consumer that works in bursts (several frames at once, then
none) takes a deeper slot to keep the frames that arrive during a burst. For batch work (every
frame, in order) the producer puts with ``block=True`` and waits until there is room instead.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """Holds at most :attr:`depth` unread items, handed out oldest first; thread-safe (one
    condition variable guards everything).

    Closing the slot wakes every waiter. An item put before :meth:`close` can still be taken; after
    that, :meth:`get` returns None at once.

    Args:
        depth: how many unread items it holds (at least 1).
    """

    def __init__(self, depth: int = 1) -> None:
        self._cond = threading.Condition()
        self._items: deque[T] = deque()
        self._depth = 1
        self._latest: T | None = None
        self._dropped = 0
        self._closed = False
        self.depth = depth

    @property
    def depth(self) -> int:
        """How many unread items the slot holds; made smaller, it drops the oldest ones."""
        with self._cond:
            return self._depth

    @depth.setter
    def depth(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"A slot holds at least one item, not {depth}.")
        with self._cond:
            self._depth = depth
            while len(self._items) > depth:
                self._items.popleft()
                self._dropped += 1
            self._cond.notify_all()

    def put(self, item: T, block: bool = False, timeout: float | None = None) -> bool:
        """Offers an item to the consumer.

        Args:
            item: the new item.
            block: False: the newest item wins and, when the slot is full, the oldest unread one
                is dropped. True: wait until the consumer made room, so nothing is dropped.
            timeout: with ``block``, the most seconds to wait; None waits as long as it takes.

        Returns:
            True when an unread item was dropped, False otherwise (also when the slot is closed,
            in which case the item is discarded).

        Raises:
            TimeoutError: ``block`` is set and no room was made within ``timeout``; the slot is
                left unchanged.
        """
        with self._cond:
            if block and not self._cond.wait_for(
                lambda: len(self._items) < self._depth or self._closed, timeout
            ):
                raise TimeoutError("The consumer did not take the previous item in time.")
            if self._closed:
                return False
            dropped = len(self._items) >= self._depth
            if dropped:
                self._items.popleft()
                self._dropped += 1
            self._items.append(item)
            self._latest = item
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float | None = None) -> T | None:
        """Takes the oldest item not yet taken, waiting for one if needed.

        Args:
            timeout: the most seconds to wait; None waits until an item arrives or the slot closes.

        Returns:
            The item, or None on timeout or when the slot is closed and holds no unread item.
        """
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            if not self._items:
                return None
            item = self._items.popleft()
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
            return bool(self._items)

    @property
    def dropped(self) -> int:
        """How many items were dropped before anyone took them."""
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

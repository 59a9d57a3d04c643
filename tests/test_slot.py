"""The small mailbox between pipeline stages."""

from __future__ import annotations

import threading

import pytest

from app.slot import LatestSlot


def test_newest_item_wins_and_overwrites_count_as_drops() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True
    assert slot.put(3) is True
    assert slot.dropped == 2
    assert slot.get(timeout=0) == 3
    assert slot.get(timeout=0.01) is None
    assert slot.put(4) is False  # the previous item was taken: nothing dropped
    assert slot.dropped == 2


def test_a_deeper_slot_keeps_the_newest_items_in_order_and_drops_the_oldest() -> None:
    slot: LatestSlot[int] = LatestSlot(depth=3)
    assert [slot.put(i) for i in range(5)] == [False, False, False, True, True]
    assert slot.dropped == 2
    assert [slot.get(timeout=0) for _ in range(4)] == [2, 3, 4, None]
    for i in range(3):
        slot.put(10 + i)
    slot.depth = 1  # made shallower: only the newest stays
    assert slot.dropped == 4
    assert slot.get(timeout=0) == 12 and slot.get(timeout=0) is None
    with pytest.raises(ValueError, match="at least one"):
        slot.depth = 0


def test_blocking_put_into_a_deeper_slot_waits_only_when_it_is_full() -> None:
    slot: LatestSlot[int] = LatestSlot(depth=2)
    slot.put(1, block=True, timeout=0)
    slot.put(2, block=True, timeout=0)
    with pytest.raises(TimeoutError):
        slot.put(3, block=True, timeout=0.01)
    assert slot.get(timeout=0) == 1
    slot.put(3, block=True, timeout=0)
    assert [slot.get(timeout=0), slot.get(timeout=0)] == [2, 3] and slot.dropped == 0


def test_peek_shows_the_latest_item_without_taking_it() -> None:
    slot: LatestSlot[str] = LatestSlot()
    assert slot.peek() is None
    slot.put("a")
    assert slot.peek() == "a"
    assert slot.pending
    assert slot.get(timeout=0) == "a"
    assert not slot.pending
    assert slot.peek() == "a"
    assert slot.get(timeout=0) is None


def test_get_waits_for_an_item_put_later() -> None:
    slot: LatestSlot[int] = LatestSlot()
    got: list[int | None] = []
    consumer = threading.Thread(target=lambda: got.append(slot.get(timeout=5)))
    consumer.start()
    slot.put(7)
    consumer.join(5)
    assert got == [7]


def test_blocking_put_hands_over_every_item_in_order() -> None:
    slot: LatestSlot[int] = LatestSlot()
    n = 300

    def produce() -> None:
        for i in range(n):
            assert slot.put(i, block=True, timeout=5) is False
        slot.close()

    producer = threading.Thread(target=produce)
    producer.start()
    received = []
    while (item := slot.get(timeout=5)) is not None:
        received.append(item)
    producer.join(5)
    assert received == list(range(n))
    assert slot.dropped == 0


def test_blocking_put_times_out_when_nobody_takes() -> None:
    slot: LatestSlot[int] = LatestSlot()
    slot.put(1)
    with pytest.raises(TimeoutError):
        slot.put(2, block=True, timeout=0.01)
    assert slot.get(timeout=0) == 1  # the waiting item was left alone
    assert slot.dropped == 0


def test_close_wakes_every_waiting_consumer_and_producer() -> None:
    slot: LatestSlot[int] = LatestSlot()
    results: list[object] = []
    getters = [threading.Thread(target=lambda: results.append(slot.get())) for _ in range(3)]
    for t in getters:
        t.start()
    full: LatestSlot[int] = LatestSlot()
    full.put(1)
    putter = threading.Thread(target=lambda: results.append(full.put(2, block=True)))
    putter.start()
    slot.close()
    full.close()
    for t in [*getters, putter]:
        t.join(5)
        assert not t.is_alive()
    assert sorted(results, key=repr) == [False, None, None, None]
    assert slot.closed


def test_closed_slot_still_gives_the_last_unread_item_then_none() -> None:
    slot: LatestSlot[int] = LatestSlot()
    slot.put(9)
    slot.close()
    slot.close()  # twice is fine
    assert slot.put(10) is False  # discarded
    assert slot.get() == 9
    assert slot.get() is None
    assert slot.peek() == 9

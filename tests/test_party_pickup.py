"""The store of sealed results waiting for direct pickup (smc.party.pickup)."""

from __future__ import annotations

import threading
import time

from smc.party.pickup import PICKUP_MIN_ELEMENTS, PickupStore, worth_picking_up


class Settled:
    """Records how results were settled (the daemon reports or uploads)."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.event = threading.Event()

    def __call__(self, delivered: bool) -> None:
        self.calls.append(delivered)
        self.event.set()


def test_a_result_is_taken_once_and_only_by_its_client() -> None:
    store = PickupStore()
    assert store.put("t1", "analyst", b"n" * 12, b"sealed")
    assert store.take("t1", "eve") is None  # another client
    assert store.take("t2", "analyst") is None  # another task
    got = store.take("t1", "analyst")
    assert got is not None and (got.nonce, got.ciphertext) == (b"n" * 12, b"sealed")
    assert store.take("t1", "analyst") is None and len(store) == 0


def test_the_store_is_bounded_in_bytes_and_time() -> None:
    store = PickupStore(max_bytes=10, ttl_s=0.05)
    assert store.put("t1", "analyst", b"n", b"x" * 8)
    assert not store.put("t2", "analyst", b"n", b"x" * 8)  # would exceed 10 bytes: the hub's copy
    time.sleep(0.1)
    assert store.take("t1", "analyst") is None  # expired
    assert store.put("t3", "analyst", b"n", b"x" * 10)  # expiry freed the room


def test_small_results_travel_with_the_hub_status() -> None:
    assert not worth_picking_up(PICKUP_MIN_ELEMENTS - 1)
    assert worth_picking_up(PICKUP_MIN_ELEMENTS)


def test_an_acknowledged_pickup_settles_as_delivered_once() -> None:
    store, settled = PickupStore(hold_s=0.05), Settled()
    assert store.put("t1", "analyst", b"n" * 12, b"sealed")
    store.hold("t1", settled)
    got = store.take("t1", "analyst")
    assert got is not None
    got.delivered(True)
    got.delivered(False)  # a second outcome changes nothing
    time.sleep(0.15)  # nor does the hold running out: the transfer settled it
    assert settled.calls == [True]


def test_a_result_not_taken_in_time_is_handed_back_for_upload_and_stays_available() -> None:
    store, settled = PickupStore(hold_s=0.05), Settled()
    assert store.put("t1", "analyst", b"n" * 12, b"sealed")
    store.hold("t1", settled)
    assert settled.event.wait(5) and settled.calls == [False]  # the hub gets its copy
    got = store.take("t1", "analyst")  # a late client still takes it directly
    assert got is not None
    got.delivered(True)
    assert settled.calls == [False]


def test_a_broken_pickup_is_handed_back_for_upload() -> None:
    store, settled = PickupStore(hold_s=60), Settled()
    assert store.put("t1", "analyst", b"n" * 12, b"sealed")
    store.hold("t1", settled)
    got = store.take("t1", "analyst")
    assert got is not None
    got.delivered(False)
    assert settled.calls == [False]


def test_an_outcome_before_the_hold_is_applied_when_the_hold_starts() -> None:
    store, settled = PickupStore(hold_s=60), Settled()
    assert store.put("t1", "analyst", b"n" * 12, b"sealed")
    got = store.take("t1", "analyst")  # taken before the daemon reported "done"
    assert got is not None
    got.delivered(True)
    assert settled.calls == []
    store.hold("t1", settled)
    assert settled.calls == [True]
    store.hold("t1", settled)  # once only
    assert settled.calls == [True]


def test_flush_hands_back_every_held_result() -> None:
    store, a, b = PickupStore(hold_s=60), Settled(), Settled()
    assert store.put("t1", "analyst", b"n" * 12, b"one")
    assert store.put("t2", "analyst", b"m" * 12, b"two")
    store.hold("t1", a)
    store.hold("t2", b)
    store.flush()
    assert a.calls == [False] and b.calls == [False]
    store.flush()
    assert a.calls == [False] and b.calls == [False]

"""The store of sealed results waiting for direct pickup (smc.party.pickup)."""

from __future__ import annotations

import time

from smc.party.pickup import PICKUP_MIN_ELEMENTS, PickupStore, worth_picking_up


def test_a_result_is_taken_once_and_only_by_its_client() -> None:
    store = PickupStore()
    assert store.put("t1", "analyst", b"n" * 12, b"sealed")
    assert store.take("t1", "eve") is None  # another client
    assert store.take("t2", "analyst") is None  # another task
    assert store.take("t1", "analyst") == (b"n" * 12, b"sealed")
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

"""The PRF behind every share mask: determinism, separation, AES-CTR conformance, uniformity.

Statistical thresholds are set so that a correct implementation fails with probability < 1e-6.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from helpers import chi2_critical
from hypothesis import given
from hypothesis import strategies as st

from smc.prg import KEY_BYTES, PRF, LocalRandom, random_key

KEY = bytes(range(16))
CHUNK_WORDS = ((1 << 20) - 16) // 8  # _keystream_into writes 1 MiB - 16 bytes per update call


def aes_ctr_reference(key: bytes, salt: bytes, label: str, n: int) -> np.ndarray:
    """AES-128-CTR keystream, nonce = blake2b-16(label, key=salt), straight from `cryptography`."""
    nonce = hashlib.blake2b(label.encode(), digest_size=16, key=salt).digest()
    enc = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return np.frombuffer(enc.update(bytes(8 * n)) + enc.finalize(), dtype="<u8").astype(np.uint64)


def test_chi2_critical_matches_tables() -> None:
    # published values: chi2(255) 0.999 quantile = 330.5; chi2(100) 0.99 quantile = 135.807
    assert abs(chi2_critical(255, 1e-3) - 330.52) < 0.5
    assert abs(chi2_critical(100, 1e-2) - 135.807) < 0.3


# ------------------------------------------------------------------------------ determinism


@given(
    st.binary(min_size=16, max_size=16),
    st.binary(max_size=32),
    st.text(max_size=20),
    st.integers(0, 300),
)
def test_draw_is_deterministic(key: bytes, salt: bytes, label: str, n: int) -> None:
    a = PRF(key, salt).draw(label, n)
    b = PRF(key, salt).draw(label, n)
    assert a.dtype == np.uint64
    assert a.shape == (n,)
    np.testing.assert_array_equal(a, b)


def test_draw_is_independent_of_other_draws() -> None:
    prf = PRF(KEY, b"s")
    first = prf.draw("x", 50)
    prf.draw("y", 1000)
    prf.draw("x/other", 3)
    np.testing.assert_array_equal(prf.draw("x", 50), first)


def test_labels_keys_and_salts_separate_streams() -> None:
    n = 64
    base = PRF(KEY, b"salt").draw("n1/in", n)
    others = [
        PRF(KEY, b"salt").draw("n1/ix", n),
        PRF(KEY, b"salt").draw("n2/in", n),
        PRF(KEY, b"salt").draw("n1/in/", n),
        PRF(bytes(16), b"salt").draw("n1/in", n),
        PRF(KEY[:-1] + b"\x00", b"salt").draw("n1/in", n),
        PRF(KEY, b"salT").draw("n1/in", n),
        PRF(KEY, b"").draw("n1/in", n),
    ]
    streams = {base.tobytes()} | {o.tobytes() for o in others}
    assert len(streams) == len(others) + 1
    for o in others:  # not merely different: no element in common (2^-64 * 64^2 chance each)
        assert not np.any(np.isin(o, base))


def test_salt_and_label_are_domain_separated() -> None:
    a = PRF(KEY, b"session-1").draw("n3/in", 16)
    b = PRF(KEY, b"session-").draw("1n3/in", 16)
    assert not np.array_equal(a, b)


def test_key_length_is_checked() -> None:
    for bad in (b"", bytes(15), bytes(17), bytes(32)):
        with pytest.raises(ValueError, match="16 bytes"):
            PRF(bad)
    assert len(random_key()) == KEY_BYTES
    assert random_key() != random_key()


def test_local_random_is_fresh_unless_keyed() -> None:
    a, b = LocalRandom(), LocalRandom()
    assert not np.array_equal(a.draw("x", 8), b.draw("x", 8))
    np.testing.assert_array_equal(LocalRandom(KEY).draw("x", 8), PRF(KEY).draw("x", 8))


# ------------------------------------------------------------------------------ lengths, prefixes


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 7, 1000, 4097])
def test_small_lengths_match_aes_ctr(n: int) -> None:
    out = PRF(KEY, b"salt").draw("label", n)
    assert out.shape == (n,)
    np.testing.assert_array_equal(out, aes_ctr_reference(KEY, b"salt", "label", n))


@pytest.mark.parametrize(
    "n",
    [
        CHUNK_WORDS - 1,
        CHUNK_WORDS,
        CHUNK_WORDS + 1,
        CHUNK_WORDS + 2,
        (1 << 17) + 1,
        2 * CHUNK_WORDS,
        2 * CHUNK_WORDS + 1,
        3 * CHUNK_WORDS + 7,
    ],
)
def test_lengths_across_chunk_boundaries_match_aes_ctr(n: int) -> None:
    salt = hashlib.sha256(b"session").digest()[:16]
    out = PRF(KEY, salt).draw("n17/zero", n)
    ref = aes_ctr_reference(KEY, salt, "n17/zero", n)
    np.testing.assert_array_equal(out, ref)
    assert out.nbytes > (1 << 20) - 1024


@given(st.integers(0, 2000), st.integers(0, 2000))
def test_prefix_consistency(a: int, b: int) -> None:
    prf = PRF(KEY, b"p")
    short, long = sorted((a, b))
    np.testing.assert_array_equal(prf.draw("l", long)[:short], prf.draw("l", short))


def test_prefix_consistency_across_chunks() -> None:
    prf = PRF(KEY)
    big = prf.draw("big", 3 * CHUNK_WORDS + 11)
    for n in (3, CHUNK_WORDS - 1, CHUNK_WORDS + 1, 2 * CHUNK_WORDS + 3):
        np.testing.assert_array_equal(big[:n], prf.draw("big", n))
    np.testing.assert_array_equal(prf.draw("l", 5)[:3], prf.draw("l", 3))


# ------------------------------------------------------------------------------ uniformity


def test_byte_histogram_chi_square() -> None:
    raw = PRF(random_key(), b"u").draw("hist", 125_000).view(np.uint8)
    assert raw.size == 10**6
    counts = np.bincount(raw, minlength=256).astype(np.float64)
    expected = raw.size / 256
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert chi2 < chi2_critical(255, 1e-6), chi2


def test_bit_balance_per_position() -> None:
    words = PRF(random_key()).draw("bits", 125_000)
    bits = ((words[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)
    ones = bits.sum(axis=0)
    n = words.size
    # per position: 6 sigma (two-sided p = 2e-9, 64 positions -> < 1.3e-7 overall)
    assert np.all(np.abs(ones - n / 2) < 6 * math.sqrt(n) / 2), ones
    total = int(ones.sum())
    assert abs(total - 64 * n / 2) < 6 * math.sqrt(64 * n) / 2


# ------------------------------------------------------------------------------ no numpy PRNG

ENGINE = Path(__file__).resolve().parents[1] / "smc"
FORBIDDEN = re.compile(
    r"np\.random|numpy\.random|default_rng|RandomState|from\s+numpy\s+import\s+random"
    r"|^\s*import\s+random\b|^\s*from\s+random\s+import",
    re.MULTILINE,
)


def test_engine_never_uses_a_non_cryptographic_prng() -> None:
    sources = [p for p in ENGINE.rglob("*.py") if p.name != "demo.py"]
    assert len(sources) >= 10, "engine package not found"
    offenders = []
    for path in sources:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(ENGINE.parent)}:{lineno}: {line.strip()}")
    assert not offenders, "numpy/stdlib PRNG in the engine:\n" + "\n".join(offenders)


def test_prng_scan_would_catch_usage() -> None:
    assert FORBIDDEN.search("mask = np.random.default_rng().integers(0, 2**63)")
    assert FORBIDDEN.search("import random")
    assert FORBIDDEN.search("rng = numpy.random.Generator(pcg)")
    assert not FORBIDDEN.search("key = os.urandom(16)  # random_key()")

"""Counter-based random numbers: every draw is a pure function of (item key, counters).

`numpy.random.Generator` is sequential: a draw depends on how many draws came before it, so the status of one
charging point would depend on which other points are simulated alongside it. Hashing (key, day, stream, k)
with the splitmix64 finaliser instead gives each draw its own address, vectorised over many items at once.
That is what makes "status at time t" a pure function of (seed, item, t).
"""

from __future__ import annotations

import hashlib

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1


def stable_key(*parts: object) -> int:
    """A 64-bit key from text parts, stable across processes (unlike `hash()`, which is salted per process)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def generator(*parts: object) -> np.random.Generator:
    """A sequential generator for one addressed thing (a station, a city), e.g. generator(seed, "city", slug).

    Used where draws happen in a fixed order anyway (building the fleet); any seed, even negative, works.
    """
    return np.random.default_rng(stable_key(*parts))


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def uniform(keys: np.ndarray, *counters: int) -> np.ndarray:
    """Uniform floats in (0, 1), one per key, addressed by the integer counters (day, stream, index ...)."""
    x = np.array(keys, dtype=np.uint64, copy=True, ndmin=1)
    with np.errstate(over="ignore"):
        for c in counters:
            x = _mix(x + np.uint64((int(c) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def normal(keys: np.ndarray, *counters: int) -> np.ndarray:
    """Standard normal draws (Box-Muller on two addressed uniforms)."""
    u1 = uniform(keys, *counters, 1)
    u2 = uniform(keys, *counters, 2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def exponential(keys: np.ndarray, *counters: int) -> np.ndarray:
    return -np.log(uniform(keys, *counters))

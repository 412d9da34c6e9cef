"""Traffic split across served entities: smooth weighted round-robin (the nginx upstream algorithm).

Deterministic, and exact over every window of ``sum(weights)`` requests: with 90/10, each 100 consecutive requests
send 90 to the first entity and 10 to the second, interleaved rather than in runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


class WeightedRouter:
    def __init__(self, weights: Sequence[int]) -> None:
        if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {list(weights)}")
        self._weights = tuple(weights)
        self._total = sum(weights)
        self._current = [0] * len(weights)
        self._lock = threading.Lock()

    def choose(self) -> int:
        """The index of the entity that takes the next request (never one with weight 0)."""
        with self._lock:
            best = 0
            for i, weight in enumerate(self._weights):
                self._current[i] += weight
                if self._current[i] > self._current[best]:
                    best = i
            self._current[best] -= self._total
            return best

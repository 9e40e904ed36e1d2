"""One manual clock for every test: Unix time that only moves when a test moves it."""

from __future__ import annotations

START_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z: a plausible "now" for stored timestamps


class ManualClock:
    """Unix time in whole milliseconds that only moves when a test moves it.

    Calling it gives milliseconds, the unit of the store, the index and the fault and edge
    models; ``seconds`` is the same instant in Unix seconds, for what works in seconds
    (``MemoryKV``'s expirations, the Access verifier's key cache): pass ``clock.seconds``.
    """

    def __init__(self, now_ms: int = START_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms

    def seconds(self) -> float:
        """The same clock in seconds."""
        return self.now_ms / 1000

    def set_seconds(self, seconds: float) -> None:
        """Move the clock (either way) to ``seconds``, to the nearest millisecond."""
        self.now_ms = round(seconds * 1000)

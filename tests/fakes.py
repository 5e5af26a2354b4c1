"""Hand-written fakes: a clock that only moves when told to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Monotonic and wall time that move together, only through `advance` (never backwards)."""

    def __init__(self, start: datetime | None = None, mono: float = 1000.0) -> None:
        self._mono = mono
        self._wall = start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> datetime:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a FakeClock never goes backwards")
        self._mono += seconds
        self._wall += timedelta(seconds=seconds)

    def set_wall_ahead(self, seconds: float) -> None:
        """Someone sets the server's wall clock ahead; monotonic time is not affected."""
        self._wall += timedelta(seconds=seconds)

    def set_wall_back(self, seconds: float) -> None:
        """Someone sets the server's wall clock back; monotonic time is not affected."""
        self._wall -= timedelta(seconds=seconds)


class FakeRpcError(Exception):
    """What a gRPC call raises: a status code, details and trailing metadata."""

    def __init__(self, code: object, details: str = "", trailers: tuple[object, ...] = ()) -> None:
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> object:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[object, ...]:
        return self._trailers

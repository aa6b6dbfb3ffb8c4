"""The live path's clock: real time, or a simulated time running `speed` times faster than the wall clock.

The simulated live feed (`make live` in simulated mode) runs its polls and events on an accelerated clock, so that
a 10-minute poll interval passes in seconds. Everything that says how old live data is (the API's `data_as_of`
and age, `/health`, the dashboard, the freshness checks) measures it against the same clock: the runner stores it
in the landing store (`landing.save_clock`) and readers take it from there (`store.load_clock`; real time when none
was stored).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class LiveClock:
    origin_wall: float  # wall-clock epoch seconds at which the simulated time was origin_sim
    origin_sim: datetime  # UTC
    speed: float = 1.0

    @classmethod
    def real(cls) -> "LiveClock":
        now = time.time()
        return cls(now, datetime.fromtimestamp(now, timezone.utc), 1.0)

    @classmethod
    def starting_at(cls, sim_start: datetime, speed: float) -> "LiveClock":
        return cls(time.time(), sim_start.astimezone(timezone.utc), float(speed))

    @property
    def simulated(self) -> bool:
        return self.speed != 1.0 or abs(self.origin_sim.timestamp() - self.origin_wall) > 1.0

    def now(self, wall: float | None = None) -> datetime:
        wall = time.time() if wall is None else wall
        return self.origin_sim + timedelta(seconds=(wall - self.origin_wall) * self.speed)

    def wall_at(self, sim_time: datetime) -> float:
        """The wall-clock epoch second at which the clock shows `sim_time`."""
        return self.origin_wall + (sim_time - self.origin_sim).total_seconds() / self.speed

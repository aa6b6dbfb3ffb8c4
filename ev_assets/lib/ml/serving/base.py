"""What the serving code shares: the errors a caller can act on (`ServingError` with its HTTP status), the history
kept in memory, and the helpers that turn a model row into its inputs."""

from __future__ import annotations

from typing import Iterable

import numpy as np

HISTORY_DAYS = 14  # of the station-time feature set kept in memory (for `at` in the recent past)
MAKE_DEMO = "run `make demo` (or the ML job, ml_job) to build it"


class ServingError(Exception):
    """A request that cannot be answered, with the HTTP status that says why (404, 422 or 503)."""

    status_code = 503

    def __init__(self, message: str, status_code: int | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})  # more fields of the JSON answer besides `detail`
        if status_code is not None:
            self.status_code = status_code


class NotFound(ServingError):
    status_code = 404


class Unprocessable(ServingError):
    status_code = 422


class NotReady(ServingError):
    status_code = 503


class Stale(ServingError):
    """The newest data at or before the requested time is older than the staleness limit: answered with 409, the
    data's age and its newest time, never with old features."""

    status_code = 409


class _Columns:
    """Feature columns of an index, and the positions of a model's features among them (cached per feature list)."""

    columns: list[str]

    def positions(self, features: tuple[str, ...], what: str) -> list[int]:
        cache = self.__dict__.setdefault("_positions", {})
        found = cache.get(features)
        if found is None:
            index = {c: i for i, c in enumerate(self.columns)}
            missing = [f for f in features if f not in index]
            if missing:
                raise NotReady(f"the champion needs features the {what} feature set lacks ({', '.join(missing[:8])}): "
                               "retrain (ml_job) so that the model and its feature set agree")
            found = cache[features] = [index[f] for f in features]
        return found


def _inputs(features: Iterable[str], x: np.ndarray) -> dict[str, float | None]:
    """{feature: value} of a model row, None for a missing value (NaN), as the prediction log keeps it."""
    return {f: (v if v == v else None) for f, v in zip(features, x.tolist())}

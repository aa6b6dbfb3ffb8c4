"""The rules the warehouse's SQL and the Python code share, in one home: the vars of the dbt project
(`dbt_project/dbt_project.yml`), loaded here. The poll grid, the stations' local time zone, the status vocabulary
of charging points and connectors, and its groups: the dbt models and their `accepted_values` tests read the same
lists."""

from __future__ import annotations

from pathlib import Path

import yaml

DBT_PROJECT_YML = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"
_VARS = yaml.safe_load(DBT_PROJECT_YML.read_text())["vars"]

POLL_GRID_MINUTES: int = int(_VARS["poll_grid_minutes"])  # the UTC grid polls are partitioned on
LOCAL_TZ: str = _VARS["local_time_zone"]  # the stations' local time: local days, hours of the week
STATUSES: tuple[str, ...] = tuple(_VARS["statuses"])
OCCUPIED: tuple[str, ...] = tuple(_VARS["occupied_statuses"])  # charging, blocked or reserved
OUT_OF_ORDER: tuple[str, ...] = tuple(_VARS["out_of_order_statuses"])


def spoken(group: tuple[str, ...]) -> str:
    """('CHARGING', 'BLOCKED', 'RESERVED') -> 'CHARGING, BLOCKED or RESERVED', for descriptions."""
    return group[0] if len(group) == 1 else f"{', '.join(group[:-1])} or {group[-1]}"

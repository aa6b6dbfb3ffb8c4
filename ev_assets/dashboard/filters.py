"""The sidebar filters (period, city, operator), shared by every page.

The widgets live in the entry script (`app.py`), which runs before every page, so their values (kept in
`st.session_state` under their keys) carry from page to page. `sidebar()` draws them and stores the resolved
`Filters` in `st.session_state[KEY]`; pages read it with `current()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb
import streamlit as st

from ev_assets.dashboard import data
from ev_assets.lib import snapshot
from ev_assets.lib.dashboard.formatting import fmt_time
from ev_assets.lib.dashboard.scope import PERIODS, Period, period_of
from ev_assets.lib.settings import Settings

KEY = "filters"
ALL_CITIES, ALL_OPERATORS = "All cities", "All operators"
PRESETS = [*PERIODS, "Custom"]


@dataclass(frozen=True)
class Filters:
    settings: Settings
    snapshot_file: str | None  # None: no snapshot published yet
    coverage: dict[str, Any] = field(default_factory=dict)
    period: Period | None = None
    city: str | None = None
    operator: str | None = None  # the operator's key (its name in a snapshot from before dim_operator)
    error: str | None = None  # the snapshot could not be read

    @property
    def operator_label(self) -> str | None:
        """The operator's display name."""
        if self.operator is None:
            return None
        return next((o["label"] for o in self.coverage.get("operators", []) if o["value"] == self.operator),
                    self.operator)

    def scope(self) -> str:
        """"koeln, RheinEnergie AG" / "the whole network"."""
        parts = [p for p in (self.city, self.operator_label) if p]
        return ", ".join(parts) if parts else "the whole network"


def sidebar(s: Settings) -> Filters:
    """Draw the filters in the sidebar and return (and keep) what they select."""
    current = data.current_snapshot(s)
    if current is None:
        st.sidebar.info("No data yet: run `make demo`.")
        filters = Filters(s, None)
        st.session_state[KEY] = filters
        return filters
    try:
        coverage = data.query(s, "coverage")
    except (snapshot.NoSnapshot, OSError, RuntimeError, duckdb.Error) as exc:  # e.g. pruned under us: next run
        filters = Filters(s, str(current), error=str(exc))
        st.session_state[KEY] = filters
        return filters

    st.sidebar.header("Filters")
    first, last = coverage["first_day"], coverage["last_day"]
    preset = st.sidebar.selectbox("Period", PRESETS, key="period_preset",
                                  help="Relative to the latest day with data in the snapshot"
                                       + (f" ({last:%d %b %Y})." if last else "."))
    custom = None
    if preset == "Custom" and first and last:
        default = st.session_state.get("period_custom") or (max(first, last.replace(day=1)), last)
        picked = st.sidebar.date_input("From – to (UTC days)", value=default, min_value=first, max_value=last,
                                       key="period_custom")
        if isinstance(picked, (tuple, list)) and len(picked) == 2:
            custom = (picked[0], picked[1])
        elif isinstance(picked, (tuple, list)) and len(picked) == 1:
            custom = (picked[0], picked[0])
        elif isinstance(picked, date):
            custom = (picked, picked)
    period = period_of(preset, first, last, custom)

    cities = [ALL_CITIES, *coverage["cities"]]
    if st.session_state.get("city") not in cities:
        st.session_state.pop("city", None)
    city = st.sidebar.selectbox("City", cities, key="city")
    city = None if city == ALL_CITIES else city
    labels = {o["value"]: o["label"] for o in coverage["operators"]}
    if city:
        in_city = data.query(s, "stations", city, None).dropna(subset=["operator"])
        labels = dict(sorted(zip(in_city["operator"], in_city["operator_name"]), key=lambda kv: (kv[1], kv[0])))
    options = [ALL_OPERATORS, *labels]
    if st.session_state.get("operator") not in options:
        st.session_state.pop("operator", None)
    operator = st.sidebar.selectbox("Operator", options, key="operator", format_func=lambda o: labels.get(o, o),
                                    help="Every spelling of an operator's name counts as that one operator.")
    operator = None if operator == ALL_OPERATORS else operator

    if period:
        st.sidebar.caption(f"Period: {period.label()} (UTC days)")
    held = (f"Data: {first:%d %b %Y} – {last:%d %b %Y}; latest poll {fmt_time(coverage['latest_poll'])}; "
            if first and last else "")
    st.sidebar.caption(f"{held}snapshot `{current.name}`")
    filters = Filters(s, str(current), coverage, period, city, operator)
    st.session_state[KEY] = filters
    return filters


def current() -> Filters:
    """The filters the sidebar resolved in this run."""
    found = st.session_state.get(KEY)
    if found is None:  # a page run without the entry script (not in the app): no filters
        return sidebar(data.settings())
    return found

"""Energy: the session KPIs (total, daily average, last 7 days, peak day, peak hour, active hours) over a date range,
for all users, one user or one garage of the Norwegian session reports (the KPI service's figures,
`ev_assets.lib.kpis`), or for a site of the Caltech ACN sessions or a station of the charging-event logs."""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ev_assets.dashboard import common, data, filters
from ev_assets.lib import snapshot
from ev_assets.lib.dashboard.energy import energy_figures
from ev_assets.lib.kpis.common import KpiUnavailable
from ev_assets.lib.kpis.energy import NORWAY

SOURCES = {  # label -> (source_name in the marts, entity type, what one entity is)
    "Residential session reports (Norway): users and garages": (NORWAY, None, None),
    "Caltech ACN: sites": ("acn", "site", "site"),
    "Charging events (OCPP-like logs): stations": ("events", "station", "station"),
}
EVERYONE = "all users"


def _range(f: filters.Filters, first: date, last: date, key: str, zone: str) -> tuple[date, date, str | None]:
    """The sidebar period clipped to the source's data; the whole span when they do not overlap (with a note)."""
    note = None
    start, end = first, last
    if f.period and f.period.start <= last and f.period.end >= first:
        start, end = max(f.period.start, first), min(f.period.end, last)
    elif f.period:
        note = (f"The sidebar period ({f.period.label()}) holds no session of this source: showing its whole span "
                f"({first:%d %b %Y} – {last:%d %b %Y}).")
    picked = st.date_input(f"Date range (local days, {zone})", value=(start, end), min_value=first, max_value=last,
                           key=f"{key}_{first}_{last}_{start}_{end}")
    if isinstance(picked, (tuple, list)) and len(picked) == 2:
        start, end = picked
    return start, end, note


def chart(daily: pd.DataFrame):
    fig = go.Figure()
    fig.add_bar(x=daily["day"], y=daily["energy_kwh"], name="energy per day (kWh)", marker_color="#1f77b4")
    rolling = daily["energy_kwh"].rolling(7, min_periods=1).mean()
    fig.add_scatter(x=daily["day"], y=rolling, name="7-day mean (in range)", mode="lines",
                    line={"color": "#ff7f0e"})
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_title="kWh",
                      legend={"orientation": "h", "y": 1.1})
    return fig


def _local(instant, zone: str) -> pd.Timestamp:
    """A UTC instant (naive ones are UTC) in the time zone `zone`."""
    at = pd.Timestamp(instant)
    return (at.tz_localize("UTC") if at.tzinfo is None else at).tz_convert(zone)


def figures(total, average, last7, peak_day, peak_hour, active, zone: str) -> None:
    """The KPI tiles; days are the sites' local days, the peak hour shown in their zone `zone`."""
    cols = [*st.columns(3), *st.columns(3)]  # two rows: the values stay readable in a narrow window
    cols[0].metric("total", f"{total['energy_kwh']:,.1f} kWh", help=f"{total['sessions']:,} sessions, "
                   f"{total['n_days']} calendar days")
    cols[1].metric("daily average", "–" if average is None else f"{average:,.1f} kWh",
                   help="Energy / calendar days of the range within the data (idle days count).")
    cols[2].metric("last 7 days", "–" if last7 is None else f"{last7:,.1f} kWh/day",
                   help="Mean daily energy of the 7 days ending at the latest day with data in the range.")
    cols[3].metric("peak day", "–" if peak_day[0] is None else f"{pd.Timestamp(peak_day[0]):%d %b %Y}",
                   help=None if peak_day[1] is None else f"{peak_day[1]:,.1f} kWh")
    if peak_day[1] is not None:
        cols[3].caption(f"{peak_day[1]:,.1f} kWh")
    if peak_hour is None:
        cols[4].metric("peak hour", "–", help="Per user, garage, site or station only: pick one.")
        cols[4].caption("pick one user / garage")
    else:
        shown = "–" if peak_hour[0] is None else f"{_local(peak_hour[0], zone):%d %b %H:00}"
        cols[4].metric("peak hour", shown, help=f"Local time ({zone})")
        if peak_hour[1] is not None:
            cols[4].caption(f"{peak_hour[1]:,.2f} kWh in that hour")
    cols[5].metric("active hours / day", "–" if active is None else f"{active:.1f} h",
                   help=f"Local clock hours ({zone}) with energy drawn, mean over the calendar days of the range.")


def norway(f: filters.Filters) -> None:
    s = f.settings
    users = data.query(s, "users", None, None)
    garages = data.query(s, "garages", None, None)
    if not users:
        common.not_ingested("Session energy", "Norwegian session reports (mart_energy_daily, source norway)",
                            "Put the report CSVs in EV_SESSIONS_INBOX (or use the simulated feed) and run the "
                            "warehouse job; `make demo` does both.")
        return
    kind = st.segmented_control("Per", ["all users", "user", "garage"], default="all users", key="energy_kind",
                                persist_state="session") or "all users"
    entity_type, entity_id = "user", None
    if kind == "user":
        entity_id = st.selectbox("User", [u["user_id"] for u in users], key="energy_user", persist_state="session")
    elif kind == "garage":
        if not garages:
            st.info("No garage in the session reports.")
            return
        entity_type = "garage"
        entity_id = st.selectbox("Garage", [g["garage_id"] for g in garages], key="energy_garage",
                                 persist_state="session")
    spans = [(u["first_day"], u["last_day"]) for u in users]
    first, last = min(a for a, _ in spans), max(b for _, b in spans)
    zone = data.query(s, "energy_time_zone", "norway")
    start, end, note = _range(f, first, last, "energy_norway", zone)
    if note:
        st.caption(note)
    args = (entity_type, entity_id, start, end)
    total = data.query(s, "energy_total", *args)
    if not total["n_days"]:
        st.info(f"**No session energy of {entity_id or EVERYONE} between {start:%d %b %Y} and {end:%d %b %Y}** "
                "(the range lies outside its data). Pick another range.")
        return
    average = data.query(s, "energy_daily_average", *args)["average_kwh"]
    last7 = data.query(s, "energy_last_7_days", *args)["average_kwh"]
    peak_day = data.query(s, "energy_peak_day", *args)
    peak_hour = active = None
    if entity_id is not None:
        hour = data.query(s, "energy_peak_hour", *args)
        peak_hour = (hour["hour_start"], hour["energy_kwh"])
        active = data.query(s, "active_hours_average", *args)["average_active_hours"]
    figures(total, average, last7, (peak_day["day"], peak_day["energy_kwh"]), peak_hour, active, zone)
    daily = pd.DataFrame(data.query(s, "energy_daily", *args))
    st.plotly_chart(chart(daily), key="energy_chart", config={"displaylogo": False})
    st.caption(f"{entity_type.capitalize() + ' ' + entity_id if entity_id else 'All users'}, "
               f"{start:%d %b %Y} – {end:%d %b %Y}: a session's energy counts on the local day ({zone}) it starts; "
               "hourly figures spread it evenly over its hours. Same figures as the service's `/kpi/energy/...`.")


def other(f: filters.Filters, source: str, entity_type: str, noun: str) -> None:
    s = f.settings
    first, last = data.query(s, "energy_span", source)
    entities = data.query(s, "energy_entities", source, entity_type)
    if first is None or not entities:
        common.not_ingested(f"Energy per {noun}", f"rows of source `{source}` in mart_energy_daily")
        return
    options = [None, *entities]
    entity_id = st.selectbox(noun.capitalize(), options, key=f"energy_{source}", persist_state="session",
                             format_func=lambda e: f"all {noun}s" if e is None else e)
    zone = data.query(s, "energy_time_zone", source)
    start, end, note = _range(f, first, last, f"energy_{source}", zone)
    if note:
        st.caption(note)
    series = data.query(s, "energy_series", source, entity_type, entity_id, start, end)
    if series.empty:
        st.info(f"**No energy of {entity_id or 'any ' + noun} between {start:%d %b %Y} and {end:%d %b %Y}.**")
        return
    k = energy_figures(series)
    figures({"energy_kwh": k["energy_kwh"], "sessions": k["sessions"], "n_days": k["n_days"]}, k["average_kwh"],
            k["last_7_average_kwh"], (k["peak_day"], k["peak_day_kwh"]),
            None if entity_id is None else (k["peak_hour_start"], k["peak_hour_kwh"]), k["average_active_hours"], zone)
    st.plotly_chart(chart(series), key=f"energy_chart_{source}", config={"displaylogo": False})
    st.caption(f"{noun.capitalize()} {entity_id or '(all)'}, {start:%d %b %Y} – {end:%d %b %Y}, from "
               "mart_energy_daily (the KPI service covers the Norwegian reports only).")


def render() -> None:
    f = common.open_page("Energy")
    if f is None:
        return
    if not f.coverage["present"]["energy"]:
        common.not_ingested("Session energy", "session data (mart_energy_daily is empty or missing)",
                            "Ingest session reports, ACN sessions or charging events (EV_SESSIONS_INBOX) and run the "
                            "warehouse job; `make demo` does both on the simulated feed.")
        return
    label = st.radio("Source", list(SOURCES), key="energy_source", horizontal=True, persist_state="session")
    source, entity_type, noun = SOURCES[label]
    try:
        if source == NORWAY:
            norway(f)
        else:
            other(f, source, entity_type, noun)
    except (KpiUnavailable, snapshot.NoSnapshot) as exc:
        common.unavailable(exc)


if __name__ == "__main__":
    common.run(render)

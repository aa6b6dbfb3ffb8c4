"""Reliability: operators, cities and stations ranked by availability over the period, with out-of-order hours,
failures and mean time between failures. The figures are those of the KPI service (`ev_assets.lib.kpis`)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from ev_assets.dashboard import common, data, filters
from ev_assets.lib import snapshot
from ev_assets.lib.dashboard.network import worst_availability
from ev_assets.lib.kpis.common import KpiUnavailable, UnknownEntity

COLUMNS = {"availability_pct": "availability %", "out_of_order_hours": "out-of-order h", "failures": "failures",
           "mtbf_hours": "MTBF h", "known_status_hours": "known-status h", "n_days": "days"}
MAX_TREND_LINES = 8


def ranked(rows: list[dict], key: str, label: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame.sort_values(["availability_pct", "out_of_order_hours"], ascending=[True, False], na_position="last")
    keep = [key, *(c for c in ("city_slug", "operator_name") if c in frame.columns and c != key), *COLUMNS]
    return frame[[c for c in keep if c in frame.columns]].rename(columns={key: label, **COLUMNS,
                                                                         "city_slug": "city",
                                                                         "operator_name": "operator"})


def table(frame: pd.DataFrame, height: int | None = None) -> None:
    height = height if height and len(frame) > 8 else "auto"
    st.dataframe(frame, hide_index=True, height=height, column_config={
        "availability %": st.column_config.NumberColumn(format="%.2f %%"),
        "out-of-order h": st.column_config.NumberColumn(format="%.1f"),
        "MTBF h": st.column_config.NumberColumn(format="%.0f"),
        "known-status h": st.column_config.NumberColumn(format="%.0f"),
    })


def bars(frame: pd.DataFrame, label: str, highlight: str | None):
    plotted = frame.dropna(subset=["availability %"])
    colors = ["#d62728" if i == 0 else ("#ff7f0e" if v == highlight else "#1f77b4")
              for i, v in enumerate(plotted[label])]
    fig = px.bar(plotted, x="availability %", y=label, orientation="h", text="availability %")
    fig.update_traces(marker_color=colors, texttemplate="%{x:.1f} %", textposition="auto")
    low = max(0.0, float(plotted["availability %"].min()) - 15) if len(plotted) else 0
    fig.update_xaxes(range=[low, 100])
    fig.update_yaxes(autorange="reversed", title="")
    fig.update_layout(height=80 + 32 * len(plotted), margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def render() -> None:
    f = common.open_page("Reliability")
    if f is None:
        return
    s = f.settings
    if not (f.coverage["present"]["reliability"] or f.coverage["present"]["station_days"]):
        common.not_ingested("Reliability", "status polls of charging points (chargecloud)")
        return
    if f.period is None:
        common.nothing_in_period("station days", f)
        return
    start, end = f.period.start, f.period.end
    problems: dict[str, Exception] = {}

    def figures(kind: str) -> list[dict]:
        try:
            return data.query(s, "reliability_list", kind, start, end)
        except (KpiUnavailable, snapshot.NoSnapshot) as exc:  # e.g. a snapshot from before dim_operator
            problems[kind] = exc
            return []

    operators, cities, stations = figures("operator"), figures("city"), figures("station")
    if len(problems) == 3:
        common.unavailable(next(iter(problems.values())))
        return
    if not operators and not cities and not stations and not problems:
        common.nothing_in_period("reliability figures", f)
        return
    st.caption(f"{f.period.label()} (UTC days). Availability = in-service time / time with a known status; "
               "a failure is the start of an out-of-order episode of a charging point; MTBF = in-service hours / "
               "failures. Operators and cities: the whole network (the KPI service's figures); stations: the "
               "sidebar's city and operator.")

    worst = worst_availability(operators)
    if worst:
        mtbf = f", MTBF {worst['mtbf_hours']:,.0f} h" if worst.get("mtbf_hours") else ""
        st.error(f"**Worst availability, {f.period.label()}: {worst['operator_name']}** — "
                 f"{worst['availability_pct']:.1f} % available, {worst['out_of_order_hours']:,.1f} out-of-order "
                 f"hours, {worst['failures']} failure{'s' if worst['failures'] != 1 else ''}{mtbf}.", icon="⚠️")
    worst_city = worst_availability(cities)
    if worst_city:
        st.warning(f"Worst city: **{worst_city['city_slug']}** — {worst_city['availability_pct']:.1f} % available, "
                   f"{worst_city['out_of_order_hours']:,.1f} out-of-order hours, {worst_city['failures']} "
                   f"failure{'s' if worst_city['failures'] != 1 else ''}.")

    sides = (("Operators", operators, "operator_name", "operator", f.operator_label),
             ("Cities", cities, "city_slug", "city", f.city))
    for column, (title, rows, name_column, label, selected) in zip(st.columns(2), sides):
        with column:
            st.subheader(f"{title}, worst first")
            frame = ranked(rows, name_column, label)
            if label in problems:
                common.unavailable(problems[label])
            if len(frame):
                st.plotly_chart(bars(frame, label, selected), key=f"{label}_bars", config={"displaylogo": False})
                table(frame)

    if operators:
        operator_days(s, f, operators)
    stations_table(s, f, stations)


def operator_days(s, f: filters.Filters, operators: list[dict]) -> None:
    start, end = f.period.start, f.period.end
    st.subheader("Daily availability per operator")
    # an operator by its key (any spelling works too; a snapshot from before dim_operator has names only)
    keys = {r.get("operator_key", r["operator_name"]): r["operator_name"]
            for r in sorted(operators, key=lambda r: (r["availability_pct"] is None, r["availability_pct"] or 0))}
    if f.operator:
        keys = {f.operator: f.operator_label}
    days = []
    for key, label in list(keys.items())[:MAX_TREND_LINES]:
        try:
            rows = data.query(s, "reliability_daily", "operator", key, start, end)
        except UnknownEntity:
            continue
        days.extend({**row, "operator_name": label} for row in rows)
    if days:
        frame = pd.DataFrame(days)
        fig = px.line(frame, x="day", y="availability_pct", color="operator_name", markers=True,
                      labels={"availability_pct": "availability %", "day": "day (UTC)", "operator_name": "operator"})
        fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10})
        fig.update_xaxes(tickformat="%a %d %b", dtick=86_400_000 if f.period.days <= 31 else None)
        st.plotly_chart(fig, key="operator_days", config={"displaylogo": False})
        if len(keys) > MAX_TREND_LINES:
            st.caption(f"The {MAX_TREND_LINES} operators with the lowest availability.")


def stations_table(s, f: filters.Filters, stations: list[dict]) -> None:
    st.subheader(f"Stations of {f.scope()}, worst first")
    frame = ranked(stations, "station_id", "station")
    if (f.city or f.operator) and len(frame):
        chosen = data.query(s, "stations", f.city, f.operator)
        frame = frame[frame["station"].isin(set(chosen["station_id"]))]
        names = dict(zip(chosen["station_id"], chosen["station_name"]))
    else:
        every = data.query(s, "stations", None, None)
        names = dict(zip(every["station_id"], every["station_name"]))
    if len(frame):
        frame.insert(1, "name", frame["station"].map(names))
    if frame.empty:
        common.nothing_in_period("station days", f)
    else:
        table(frame, height=320)


if __name__ == "__main__":
    common.run(render)

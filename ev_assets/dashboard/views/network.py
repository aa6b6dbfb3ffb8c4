"""Network now: the status of every charging point at the latest poll, by city and operator, on a map, and the trend
over the selected period."""

from __future__ import annotations

import math

import pandas as pd
import plotly.express as px
import streamlit as st

from ev_assets.dashboard import common, data, filters, live
from ev_assets.lib.dashboard.formatting import fmt_age, fmt_time
from ev_assets.lib.dashboard.network import CATEGORIES, COLORS, shares, station_now


def station_map(stations: pd.DataFrame, tiles: bool):
    """Stations coloured by their status now. Without tiles (the default: offline) a plain scatter of longitude and
    latitude with the axes scaled as on a map; with `tiles`, a MapLibre map whose base tiles come from the web."""
    located = stations.dropna(subset=["latitude", "longitude"])
    hover = {"address": True, "operator_name": True, "points": True, "free": True, "latitude": False,
             "longitude": False, "station_id": True}
    common_args = dict(color="category", color_discrete_map=COLORS, hover_name="station_name", hover_data=hover,
                       custom_data=["station_id"], category_orders={"category": list(CATEGORIES)},
                       labels={"category": "status now", "operator_name": "operator", "free": "free points"})
    if tiles:
        fig = px.scatter_map(located, lat="latitude", lon="longitude", zoom=10, map_style="carto-positron",
                             **common_args)
        fig.update_traces(marker={"size": 11})
    else:
        fig = px.scatter(located, x="longitude", y="latitude", **common_args)
        mid = math.radians(float(located["latitude"].mean())) if len(located) else 0.0
        # a degree of latitude is 1/cos(latitude) times as long as a degree of longitude
        fig.update_yaxes(scaleanchor="x", scaleratio=1 / max(math.cos(mid), 0.1), title="latitude")
        fig.update_xaxes(title="longitude")
        fig.update_traces(marker={"size": 11, "line": {"width": 0.5, "color": "white"}})
    # uirevision: a redraw with new statuses keeps the user's zoom and pan
    fig.update_layout(height=460, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend_title_text="status now",
                      clickmode="event+select", uirevision="station_map")
    return fig


def trend_chart(trend: pd.DataFrame, hourly: bool):
    long = trend.melt(id_vars=["at"], value_vars=list(CATEGORIES), var_name="status", value_name="share")
    fig = px.area(long, x="at", y="share", color="status", color_discrete_map=COLORS,
                  category_orders={"status": list(CATEGORIES)},
                  labels={"at": "hour (UTC)" if hourly else "day (UTC)", "share": "share of charging-point time"})
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def share_bars(frame: pd.DataFrame, by: str, label: str, key: str) -> None:
    """Each city / operator as one bar of its charging points' statuses now (shares add up to 100 %), and the
    numbers in a table below."""
    table = shares(frame, by).rename(columns={by: label})
    long = table.melt(id_vars=[label, "points"], value_vars=list(CATEGORIES), var_name="status", value_name="share")
    fig = px.bar(long, x="share", y=label, color="status", orientation="h", color_discrete_map=COLORS,
                 category_orders={"status": list(CATEGORIES), label: list(table[label])},
                 hover_data={"points": True, "share": ":.1%"})
    # one offset group: px gives each colour its own, which the browser's plotly.js draws side by side
    fig.update_traces(offsetgroup="shares")
    fig.update_xaxes(tickformat=".0%", range=[0, 1], title="share of charging points")
    fig.update_yaxes(title="")
    fig.update_layout(height=110 + 30 * len(table), margin={"l": 10, "r": 10, "t": 10, "b": 10}, showlegend=False,
                      barmode="stack")
    st.plotly_chart(fig, key=key, config={"displaylogo": False})
    with st.expander(f"numbers by {label}"):
        st.dataframe(table, hide_index=True, column_config={
            c: st.column_config.NumberColumn(c, format="percent") for c in CATEGORIES})


def freshness_line(now: live.Now) -> None:
    """"as of 10:20 UTC (14 s ago) · simulated clock, 60x", where the figures come from, and a warning when the live
    data is stale."""
    kind = "live" if now.live is not None else "marts snapshot"
    st.markdown(f":material/schedule: **{now.as_of}** · {kind}")
    st.caption(now.source)
    # always one element here, a warning or nothing: a warning that comes and goes must not shift the elements
    # below it, which the browser would then draw anew (they would blink out during the redraw)
    notice = st.empty()
    if now.stale:
        notice.warning(f"**The live data is stale**: its newest poll or event is {fmt_age(now.live.age_s())} old on "
                   "the live clock. Is the live path (`make live`) still running?")


def now_section() -> None:
    """The status now: the figures, the map and the shares by city and operator (redrawn every few seconds)."""
    f = filters.current()
    s = f.settings
    now = live.status_now(s, f.city, f.operator, f.coverage)
    if now is None:
        if not common.no_snapshot(f):
            common.not_ingested("Network status", "charging-point status polls (chargecloud)")
        return
    freshness_line(now)
    frame = now.frame
    if frame.empty:
        st.info(f"**No charging point of {f.scope()}** is in the station dimension: pick another city or operator.")
        return
    polled = frame["city_polled_at"].dropna()
    st.caption(f"Status of the {len(frame):,} charging points of {f.scope()} at the latest "
               f"{'live ' if now.live is not None else ''}poll of each city "
               f"({fmt_time(polled.max() if len(polled) else None)})"
               + (f"; the trend covers {f.period.label()}." if f.period else "."))

    overall = shares(frame).iloc[0]
    cols = st.columns(len(CATEGORIES) + 1)
    cols[0].metric("charging points", f"{int(overall['points']):,}")
    for col, category in zip(cols[1:], CATEGORIES):
        col.metric(category, common.pct(overall[category]))
    counts = frame["category"].value_counts()
    st.caption(" · ".join(f"{int(counts.get(c, 0)):,} {c}" for c in CATEGORIES))

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Stations by status now")
        stations = station_now(frame)
        cities = sorted(stations["city_slug"].dropna().unique())
        if len(cities) > 1:  # cities lie far apart: one map per city reads better than dots on an empty country
            counts = stations["city_slug"].value_counts()
            largest = min(counts.index, key=lambda c: (-counts[c], c))  # most stations, then by name
            city = st.selectbox("Map of", cities, index=cities.index(largest), key="map_city",
                                persist_state="session")
            stations = stations[stations["city_slug"] == city]
        if stations[["latitude", "longitude"]].dropna().empty:
            st.info("No station of this selection has coordinates (they are dropped when outside Germany"
                    + (", and the live path's stations come with none until a marts snapshot names them: "
                       "`make demo`)." if now.live is not None else ")."))
        else:
            event = st.plotly_chart(station_map(stations, s.map_tiles), key="station_map", on_select="rerun",
                                    selection_mode="points", config={"displaylogo": False})
            st.caption("A station shows its most useful status: green if at least one point is free. "
                       + ("Base map: online tiles (EV_MAP_TILES)." if s.map_tiles else
                          "No base map (offline; EV_MAP_TILES=true adds online tiles).")
                       + " Click a station to open it.")
            picked = [p.get("customdata", [None])[0] for p in (event.selection.points if event else [])
                      if p.get("customdata")]
            if picked:
                st.session_state["station"] = str(picked[0])
                st.switch_page("views/station.py")
    with right:
        st.subheader("By city")
        share_bars(frame, "city_slug", "city", "city_bars")
    st.subheader("By operator")
    share_bars(frame, "operator_name", "operator", "operator_bars")


@st.fragment(run_every=live.REFRESH_S)
def live_part() -> None:
    common.run(now_section)


def render() -> None:
    st.title("Network now")
    live_part()
    f = filters.current()
    if f.snapshot_file is None or f.error or not f.coverage["present"]["status"]:
        return  # (the trend reads the marts snapshot)
    s = f.settings
    st.subheader("Trend over the period")
    if f.period is None:
        common.nothing_in_period("station days", f)
        return
    hourly = f.period.days < 14
    trend = data.query(s, "network_trend", f.period.start, f.period.end, f.city, f.operator, hourly)
    if trend.empty:
        common.nothing_in_period("utilization", f)
        return
    st.plotly_chart(trend_chart(trend, hourly), key="trend", config={"displaylogo": False})
    st.caption(f"Share of charging-point time per status, {'hourly' if hourly else 'daily'} "
               "(polls of each status / all polls of the stations).")


if __name__ == "__main__":
    common.run(render)

"""Station: master data, whether it will likely be free soon (the champion models' forecast), when it is usually busy
(hour-of-week heatmap), its status timeline, inferred sessions, equipment and points of interest nearby.

Reads marts only: the station dimensions, the hourly utilization mart, the sessions fact, and the status facts of
at most the last `TIMELINE_MAX_DAYS` days of the period (pruned by day), so it stays fast on a long history.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from ev_assets.dashboard import common, data, filters, live, ml
from ev_assets.lib import snapshot
from ev_assets.lib.dashboard.formatting import fmt_age, fmt_time
from ev_assets.lib.dashboard.network import AVAILABLE, CATEGORIES, COLORS
from ev_assets.lib.dashboard.scope import Period
from ev_assets.lib.dashboard.stations import LOCAL_TZ, TIMELINE_MAX_DAYS, busiest_hours, heatmap_grid, opening_hours

KEY = "station"


def _live_stations(f: filters.Filters, state: live.Live) -> pd.DataFrame:
    """The stations the live path knows, as the `stations` reader's frame (no names: no snapshot names them)."""
    known = state.stations()
    if f.city:
        known = known[known["city_slug"] == f.city]
    return pd.DataFrame({"station_id": known["station_id"].astype(str), "station_name": None, "address": None,
                         "city_slug": known["city_slug"].fillna("–"), "operator_name": None, "operator": None})


def _choose(f: filters.Filters, state: live.Live | None) -> str | None:
    if f.snapshot_file is None:
        stations = _live_stations(f, state)
    else:
        stations = data.query(f.settings, "stations", f.city, f.operator)
    requested = st.query_params.get(KEY)  # a link to a station: /station?station=<id>
    if requested and KEY not in st.session_state:
        st.session_state[KEY] = requested
    chosen = st.session_state.get(KEY)
    if chosen is not None and chosen not in set(stations["station_id"]):
        every = data.query(f.settings, "stations", None, None) if f.snapshot_file else stations
        if state is not None and chosen not in set(every["station_id"]):  # a station only the live path knows
            every = pd.concat([every, _live_stations(f.__class__(f.settings, None), state)], ignore_index=True)
        # a station picked elsewhere (the map, a link)
        stations = pd.concat([stations, every[every["station_id"] == chosen]], ignore_index=True)
    if stations.empty:
        return None
    names = {r.station_id: f"{r.station_name or r.address or r.station_id} · {r.city_slug} · {r.station_id}"
             for r in stations.itertuples(index=False)}
    if chosen is not None and chosen not in names:
        st.session_state.pop(KEY)  # an unknown id from a link: start from the first station
    picked = st.selectbox("Station", list(names), format_func=lambda s: names.get(s, s), key=KEY,
                          persist_state="session",
                          help="Stations of the city and operator chosen in the sidebar; a link can name one: "
                               "/station?station=<id>.")
    if picked is not None and st.query_params.get(KEY) != picked:
        st.query_params[KEY] = picked  # the address bar names the station: a link to share
    return picked


def _yes_no(value) -> str:
    return "–" if value is None or value != value else ("yes" if value else "no")


def master_data(master: dict) -> None:
    cols = st.columns(4)
    cols[0].markdown(f"**Address**  \n{master.get('address') or '–'}  \n{master.get('postal_code') or ''} "
                     f"{master.get('city') or master.get('city_slug') or ''}")
    cols[1].markdown(f"**Operator**  \n{master.get('operator_name') or '–'}  \n"
                     f"{'☎ ' + master['operator_hotline'] if master.get('operator_hotline') else ''}")
    opening = opening_hours(master.get("opening_times_json"))
    cols[2].markdown(f"**Open 24/7**: {_yes_no(master.get('is_open_24_7'))}  \n"
                     f"**Roaming**: {_yes_no(master.get('is_roaming'))}  \n"
                     + ("" if not opening or master.get("is_open_24_7") else f"Opening times: {opening}"))
    lat, lon = master.get("latitude"), master.get("longitude")
    where = f"{lat:.5f}, {lon:.5f}" if lat is not None and lat == lat else "–"  # (NaN != NaN)
    cols[3].markdown(f"**Coordinates**  \n{where}  \nStation id `{master['station_id']}`")


def forecast_panel(f: filters.Filters, station_id: str) -> None:
    with st.spinner("Loading the champion models…"):
        try:
            answers = ml.forecast(f.settings, station_id)
        except Exception as exc:  # noqa: BLE001 - a broken registry must not break the page
            answers = {h: {"error": f"the models could not be loaded ({type(exc).__name__}: {exc})"}
                       for h in ml.AVAILABILITY_MODELS}
    cols = st.columns(len(answers))
    for col, horizon in zip(cols, sorted(answers)):
        answer = answers[horizon]
        if "error" in answer:
            col.metric(f"free in {horizon} min", "–")
            col.caption(answer["error"])
            continue
        col.metric(f"free in {horizon} min", f"{100 * answer['probability']:.0f} %",
                   help=f"Probability that at least one charging point is AVAILABLE at "
                        f"{fmt_time(answer['target_at'])} ({answer['model']} version {answer['version']}, the "
                        "champion).")
        col.caption(f"likely free at {answer['target_at']:%H:%M} UTC" if answer["probability"] >= 0.5 else
                    f"likely NOT free at {answer['target_at']:%H:%M} UTC")
    answered = next((a for a in answers.values() if "features_at" in a), None)
    if answered is not None:
        where = "latest live poll" if answered.get("features_from") == "live" else "latest poll in the feature set"
        st.caption(f"Forecast from the station's {where} ({fmt_time(answered['features_at'])}) by the champion "
                   "models of the registry, with the features the service builds.")


def heatmap(frame: pd.DataFrame):
    grid = heatmap_grid(frame)
    fig = px.imshow(grid, color_continuous_scale="Reds", zmin=0, zmax=1, aspect="auto",
                    labels={"x": "hour of day (local time)", "y": "", "color": "occupied"})
    fig.update_xaxes(tickmode="linear", dtick=2)
    fig.update_coloraxes(colorbar_tickformat=".0%")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def timeline(runs: pd.DataFrame):
    fig = px.timeline(runs, x_start="start", x_end="finish", y="charging_point_id", color="category",
                      color_discrete_map=COLORS, category_orders={"category": list(CATEGORIES)},
                      hover_data={"status": True, "polls": True},
                      labels={"charging_point_id": "", "category": "status"})
    fig.update_traces(offsetgroup="runs")  # one lane per charging point (px offsets each colour otherwise)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=120 + 40 * runs["charging_point_id"].nunique(),
                      margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return fig


def _station_now(f: filters.Filters, station_id: str) -> live.Now | None:
    now = live.status_now(f.settings, None, None, f.coverage)
    if now is None:
        return None
    frame = now.frame
    return live.Now(frame[frame["station_id"] == station_id], now.live, now.as_of, now.source, now.stale)


def _kwh(value) -> str:
    return "–" if value is None or value != value else f"{value:,.1f} kWh"


def now_panel(f: filters.Filters, station_id: str) -> None:
    """Free now, the open charging sessions with their energy so far, and today's energy and revenue."""
    now = _station_now(f, station_id)
    if now is None:
        st.info("No status of this station yet: neither the live path (`make live`) nor the marts snapshot has "
                "polled it.")
        return
    st.markdown(f":material/schedule: **{now.as_of}** · {'live' if now.live is not None else 'marts snapshot'}")
    st.caption(now.source)
    notice = st.empty()  # a warning or nothing, always one element (see network.freshness_line)
    if now.stale:
        notice.warning(f"**The live data is stale**: its newest poll or event is {fmt_age(now.live.age_s())} old on "
                   "the live clock. Is the live path (`make live`) still running?")
    frame = now.frame
    free = int((frame["category"] == AVAILABLE).sum()) if len(frame) else 0
    cols = st.columns(4)
    cols[0].metric("free now", f"{free} of {len(frame)}" if len(frame) else "–",
                   help="Charging points AVAILABLE at the latest " + ("live " if now.live is not None else "")
                        + "poll of the station's city.")
    if now.live is None:
        for col, label in zip(cols[1:], ("charging now", "energy today", "revenue today")):
            col.metric(label, "–")
        st.caption("Open sessions and today's energy come from the live path's charging events (`make live`).")
        return
    sessions = now.live.sessions
    sessions = sessions[sessions["station_id"].astype(str) == str(station_id)]
    day, energy, transactions = live.live_station_today(now.live, station_id)
    stopped = transactions[transactions["stopped_at"].notna()]
    currency = ", ".join(sorted(set(stopped["currency"].dropna()))) or ""
    cols[1].metric("charging now", f"{len(sessions)} session{'' if len(sessions) == 1 else 's'}",
                   help="Charging transactions started and not stopped (start, meter and stop events).")
    cols[2].metric("energy today", _kwh(energy.get("energy_kwh", 0.0)),
                   help=f"{day} (UTC, live clock): the energy so far of every transaction whose latest event is on "
                        "that day, open ones included.")
    revenue = f"{energy.get('revenue', 0.0):,.2f} {currency}".strip() if len(stopped) else "–"
    cols[3].metric("revenue today", revenue, help=f"{day}: the cost of the transactions stopped that day "
                   "(– while none has stopped).")
    if sessions.empty:
        st.caption(f"No open charging session at this station; {len(stopped)} completed on {day} (UTC).")
        return
    shown = sessions.assign(started=pd.to_datetime(sessions["started_at"], utc=True).dt.strftime("%H:%M UTC"),
                            last_meter=pd.to_datetime(sessions["last_event_at"], utc=True).dt.strftime("%H:%M:%S"))
    st.dataframe(shown[["connector_id", "started", "meter_kwh", "power_kw", "last_meter", "events",
                        "transaction_id"]], hide_index=True, key="open_sessions", column_config={
        "connector_id": st.column_config.TextColumn("connector"),
        "meter_kwh": st.column_config.NumberColumn("energy so far (kWh)", format="%.2f"),
        "power_kw": st.column_config.NumberColumn("power (kW)", format="%.1f"),
        "last_meter": st.column_config.TextColumn("last meter value (UTC)"),
        "transaction_id": st.column_config.TextColumn("transaction"),
    })
    st.caption(f"Open charging sessions: energy so far is the latest meter value; {len(stopped)} completed on "
               f"{day} (UTC).")


def equipment_panel(f: filters.Filters, station_id: str) -> None:
    st.markdown("#### Charging points and connectors")
    equipment = data.query(f.settings, "station_equipment", station_id)
    if equipment.empty:
        st.info("No current charging point of this station in the dimension.")
        return
    now = _station_now(f, station_id)
    if now is not None and len(now.frame):
        status = now.frame.set_index("charging_point_id")["status"]
        equipment.insert(1, "status now", equipment["charging_point_id"].map(status))
    st.dataframe(equipment.drop(columns=["connector_id"]), hide_index=True)


@st.fragment(run_every=live.REFRESH_S)
def live_now(station_id: str) -> None:
    common.run(lambda: now_panel(filters.current(), station_id))


@st.fragment(run_every=live.REFRESH_S)
def live_equipment(station_id: str) -> None:
    common.run(lambda: equipment_panel(filters.current(), station_id))


@st.fragment(run_every=live.REFRESH_S)
def live_forecast(station_id: str) -> None:
    """The forecast follows the newest live poll while the page is open (its row is cached per poll)."""
    common.run(lambda: forecast_panel(filters.current(), station_id))


def render() -> None:
    st.title("Station")
    f = filters.current()
    s = f.settings
    state = live.live(s)
    has_snapshot = f.snapshot_file is not None and not f.error
    if state is None:
        if common.no_snapshot(f):
            return
        if not f.coverage["present"]["stations"]:
            common.not_ingested("Stations", "station master data (chargecloud)")
            return
    elif not has_snapshot:
        f = filters.Filters(s, None, city=f.city)  # the live path's stations, without master data
    try:
        station_id = _choose(f, state)
    except (snapshot.NoSnapshot, RuntimeError) as exc:
        common.unavailable(exc)
        return
    if station_id is None:
        st.info(f"**No station of {f.scope()}.** Pick another city or operator in the sidebar.")
        return
    master = data.query(s, "station_master", station_id) if has_snapshot else None
    if master is None and state is None:
        st.info(f"**Unknown station `{station_id}`**: it is not in the station dimension of this snapshot.")
        return
    if master is None:
        st.subheader(f"Station {station_id}")
        st.caption("Not in a marts snapshot yet, so no master data: `make demo` (or the warehouse job) names it.")
    else:
        st.subheader(master.get("station_name") or master.get("address") or station_id)
        master_data(master)

    st.markdown("#### Now")
    live_now(station_id)

    st.markdown("#### Will it be free soon?")
    live_forecast(station_id)
    if not has_snapshot or not f.coverage["present"]["stations"]:
        return  # (the rest reads the marts snapshot)

    st.markdown("#### When is it usually busy?")
    scope = st.segmented_control("Heatmap over", ["all history", "the selected period"], default="all history",
                                 key="heatmap_scope", persist_state="session")
    start, end = (f.period.start, f.period.end) if scope == "the selected period" and f.period else (None, None)
    hours = data.query(s, "hour_of_week", station_id, start, end) if f.coverage["present"]["station_hours"] \
        else pd.DataFrame()
    if hours.empty:
        if f.coverage["present"]["station_hours"]:
            common.nothing_in_period("hourly utilization of this station", f)
        else:
            common.not_ingested("Utilization", "hourly utilization (mart_utilization_station_hourly)")
    else:
        busiest = busiest_hours(hours, 3)
        weeks = hours["hours"].max()
        st.markdown("Usually busiest: " + ", ".join(f"**{b['label']}** ({100 * b['share_occupied']:.0f} % occupied)"
                                                     for b in busiest)
                    + f" — over {int(weeks)} week{'s' if weeks != 1 else ''} of data, local time ({LOCAL_TZ}).")
        st.plotly_chart(heatmap(hours), key="heatmap", config={"displaylogo": False})
        st.caption("Share of the station's charging-point time occupied (charging, blocked or reserved) per hour of "
                   "the week. White: never observed.")

    st.markdown("#### Status timeline")
    if f.period is None or not f.coverage["present"]["status"]:
        common.not_ingested("Status timeline", "charging-point status polls")
    else:
        first = max(f.period.start, f.period.end - timedelta(days=TIMELINE_MAX_DAYS - 1))
        runs = data.query(s, "status_timeline", station_id, first, f.period.end, s.poll_interval_minutes)
        if runs.empty:
            common.nothing_in_period("status polls of this station", f)
        else:
            st.plotly_chart(timeline(runs), key="timeline", config={"displaylogo": False})
            shown = Period(first, f.period.end)
            st.caption(f"Status runs per charging point, {shown.label()} (UTC)"
                       + (f"; the timeline shows at most the last {TIMELINE_MAX_DAYS} days of the period."
                          if shown != f.period else "."))

    st.markdown("#### Inferred charging sessions")
    if f.period is None or not f.coverage["present"]["sessions"]:
        common.not_ingested("Sessions", "inferred charging sessions (fct_charging_sessions)")
    else:
        sessions = data.query(s, "station_sessions", station_id, f.period.start, f.period.end)
        if sessions.empty:
            common.nothing_in_period("inferred sessions at this station", f)
        else:
            cols = st.columns(4)
            cols[0].metric("sessions", f"{len(sessions):,}")
            cols[1].metric("mean duration", f"{sessions['duration_minutes'].mean() / 60:.1f} h")
            cols[2].metric("energy (lower bound)", f"{sessions['energy_kwh_lower'].sum():,.0f} kWh")
            cols[3].metric("energy (upper bound)", f"{sessions['energy_kwh_upper'].sum():,.0f} kWh")
            st.dataframe(sessions, hide_index=True, height=240 if len(sessions) > 6 else "auto", column_config={
                "duration_minutes": st.column_config.NumberColumn("duration (min)", format="%.0f"),
                "energy_kwh_lower": st.column_config.NumberColumn("kWh (lower)", format="%.1f"),
                "energy_kwh_upper": st.column_config.NumberColumn("kWh (upper)", format="%.1f"),
                "rated_power_kw": st.column_config.NumberColumn("rated kW", format="%.1f"),
            })
            st.caption(f"Sessions started {f.period.label()}: CHARGING runs of a charging point; energy between the "
                       "vehicle's cap (11 kW AC, 150 kW DC) and the point's rated power.")

    left, right = st.columns([3, 2])
    with left:
        live_equipment(station_id)
    with right:
        st.markdown("#### Points of interest nearby")
        pois = data.query(s, "nearby_pois", station_id)
        if pois.empty:
            st.info(f"No point of interest within {s.poi_radius_m} m is mapped to this station (or OSM was not "
                    "ingested).")
        else:
            st.dataframe(pois.drop(columns=["poi_id"]), hide_index=True,
                         column_config={"distance_m": st.column_config.NumberColumn("distance", format="%.0f m")})


if __name__ == "__main__":
    common.run(render)

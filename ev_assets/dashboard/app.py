"""The dashboard's entry script: page config, navigation, the shared sidebar filters; then the chosen page runs.

`python -m ev_assets.dashboard` serves it (headless, on `settings.serve_host:settings.dashboard_port`).
"""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st

from ev_assets.dashboard import data, filters, ml

st.set_page_config(page_title="EV charging · operator dashboard", page_icon=":material/ev_station:", layout="wide")

NETWORK = "views/network.py"


def _home() -> None:
    """The root URL draws Network now itself. Streamlit serves the default page at `/` only (its `url_path` is not
    an address), so Network now is also an ordinary page (`/network`); `/` runs the same script in place rather
    than switching to it, which would cost the first visit one more script run and round trip."""
    runpy.run_path(str(Path(__file__).parent / NETWORK), run_name="__main__")


PAGES = [
    st.Page(_home, title="Network now", url_path="home", default=True, visibility="hidden"),
    # Material icons ship with Streamlit (no emoji font needed, nothing fetched)
    st.Page(NETWORK, title="Network now", icon=":material/map:", url_path="network"),
    st.Page("views/station.py", title="Station", icon=":material/ev_station:", url_path="station"),
    st.Page("views/reliability.py", title="Reliability", icon=":material/build:", url_path="reliability"),
    st.Page("views/energy.py", title="Energy", icon=":material/bolt:", url_path="energy"),
    st.Page("views/models.py", title="Models", icon=":material/model_training:", url_path="models"),
]

settings = data.settings()
page = st.navigation(PAGES)
filters.sidebar(settings)
page.run()
# The champions and the station-time features, loaded in the background once the first page is drawn (not
# before: the loading thread would slow that page down), so the Station page finds them loaded.
ml.warm_up(settings)

"""Pieces every page uses: the explanations shown instead of an empty chart, and small formatters."""

from __future__ import annotations

from typing import Callable

import duckdb
import streamlit as st

from ev_assets.dashboard import filters
from ev_assets.dashboard.filters import Filters
from ev_assets.lib import snapshot

MAKE_DEMO = "run `make demo` (or the warehouse job, `warehouse_job`, which publishes a new snapshot when it ends)"


def no_snapshot(f: Filters) -> bool:
    """Show why there is nothing to show when there is no readable snapshot; True if so (the page stops)."""
    if f.snapshot_file is None:
        st.info(f"**No data yet.** No marts snapshot has been published in `{f.settings.snapshot_dir}`: {MAKE_DEMO}. "
                "The dashboard reads only that read-only snapshot, never the warehouse a pipeline run is writing.")
        return True
    if f.error:
        st.warning(f"The marts snapshot could not be read ({f.error}). Reload the page in a moment; if it persists, "
                   f"{MAKE_DEMO}.")
        return True
    return False


def open_page(title: str) -> Filters | None:
    """The page's title and the sidebar's filters; None, with the reason shown, when there is no readable snapshot
    (the page stops)."""
    st.title(title)
    f = filters.current()
    return None if no_snapshot(f) else f


def not_ingested(what: str, source: str, how: str | None = None) -> None:
    """The source a view needs holds no rows in the snapshot."""
    st.info(f"**{what}: the source was not ingested.** The snapshot holds no {source}. "
            f"{how or 'Ingest it and run the warehouse job (`make demo` does both on the simulated feed).'}")


def nothing_in_period(what: str, f: Filters, span: tuple | None = None) -> None:
    """The period selects no rows of a source that has data elsewhere."""
    first, last = span or (f.coverage.get("first_day"), f.coverage.get("last_day"))
    held = f" The snapshot holds {first:%d %b %Y} – {last:%d %b %Y}." if first and last else ""
    scope = "" if f.scope() == "the whole network" else f" for {f.scope()}"
    st.info(f"**No {what} in {f.period.label() if f.period else 'this period'}{scope}.**{held} "
            "Pick another period or filter in the sidebar.")


def unavailable(exc: Exception) -> None:
    """A KPI whose table the snapshot lacks (kpis.KpiUnavailable) or a snapshot that vanished."""
    if isinstance(exc, snapshot.NoSnapshot):
        st.info(str(exc))
    else:
        st.warning(str(exc))


def run(render: Callable[[], None]) -> None:
    """Run a page; a snapshot published by an older warehouse (a table or column missing) or one that vanished
    meanwhile is explained instead of shown as a traceback."""
    try:
        render()
    except duckdb.CatalogException as exc:
        st.warning(f"**This snapshot lacks something this page reads** ({str(exc).splitlines()[0]}). It was "
                   f"published by an older warehouse: {MAKE_DEMO}.")
    except snapshot.NoSnapshot as exc:
        st.info(str(exc))


def pct(value) -> str:
    return "–" if value is None or value != value else f"{100 * value:.1f} %"

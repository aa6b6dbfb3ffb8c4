"""OpenStreetMap points of interest around charging stations (osmnx): raw pulls per area, and the POI table."""


import dagster as dg
import pandas as pd

from ev_assets.defs.resources import EvConfig
from ev_assets.defs.tables import table_metadata, table_spec
from ev_assets.lib import rawstore, replayfiles, tables
from ev_assets.lib.lake import WHOLE
from ev_assets.lib.sources import osm

RAW_SOURCE = "osm"


@dg.asset(
    group_name="raw",
    kinds={"geojson"},
    check_specs=[dg.AssetCheckSpec(replayfiles.CHECK, asset="osm_pulls", description=replayfiles.CHECK_DESCRIPTION)],
)
def osm_pulls(context: dg.AssetExecutionContext, ev_config: EvConfig):
    """Raw OSM features matching the POI tags (EV_OSM_TAGS), one GeoJSON pull per area (city or replay file).

    Live asks Overpass through osmnx; replay reads `.osm`, `.osm.gz` and `.osm.bz2` files; an area without POIs
    is an empty pull, not a failure. A replay file that cannot be read is left out and fails the check
    `all_replay_files_read`, the other areas still load. Pulls are stored by content under `raw/osm/`.
    """
    settings = ev_config.settings()
    store = rawstore.from_settings(settings)
    paths, counts = {}, {}
    report = replayfiles.FileReport()
    areas = osm.list_areas(settings, report)
    for i, area in enumerate(areas, start=1):
        try:
            features = osm.fetch_osm(settings, area, log=context.log.debug)  # a normal count, said below
        except osm.OsmReplayFileError as exc:  # one bad extract: the other areas still load
            report.unreadable[exc.file] = exc.reason
            continue
        raw = store.write_pull(RAW_SOURCE, osm.features_to_raw(features), prefix=area)
        paths[area], counts[area] = str(raw.path), len(features)
        context.log.info(f"[{i}/{len(areas)}] {area}: {len(features)} features")
        if not len(features):  # loads, but adds no rows: say which area, so a wrong extract or tag list shows
            context.log.warning(f"osm: area {area} has no features matching the POI tags (EV_OSM_TAGS): it adds no "
                                "rows to raw.osm_pois")
    for line in report.warnings(RAW_SOURCE):
        context.log.warning(line)
    if not paths and settings.mode(RAW_SOURCE) == "replay":
        folder = settings.replay_folder(RAW_SOURCE)
        context.log.warning(f"osm: no area could be read from {folder}: raw.osm_pois will be empty")
    yield dg.Output(
        paths,
        metadata={
            "areas": len(paths),
            "features": sum(counts.values()),
            "features_per_area": dg.MetadataValue.json(counts),
            "areas_without_features": dg.MetadataValue.json(sorted(area for area, n in counts.items() if not n)),
            "source_mode": settings.mode("osm"),
            **report.metadata(),
        },
    )
    yield dg.AssetCheckResult(check_name=replayfiles.CHECK, passed=report.ok, metadata=report.check_metadata())


@dg.multi_asset(
    specs=[table_spec("osm_pois", "Points of interest (supermarkets, fast food, parking, ...) per area.", deps=["osm_pulls"])],
)
def osm_pois(context: dg.AssetExecutionContext, ev_config: EvConfig, osm_pulls: dict):
    """POIs from the latest OSM pulls, one row per feature with its category and a representative point;
    also written as GeoParquet (EPSG:4326) to `<data root>/geo/osm_pois.parquet`."""
    settings = ev_config.settings()
    store = rawstore.from_settings(settings)
    frames = [
        osm.pois_from_features(osm.features_from_raw(store.read(path)), area, settings.osm_tags)
        for area, path in osm_pulls.items()
    ]
    pois = pd.concat(frames, ignore_index=True) if frames else tables.frame("osm_pois")
    geoparquet = osm.write_geoparquet(pois, settings.data_dir / "geo" / "osm_pois.parquet")
    written = ev_config.lake().write("osm_pois", pois, RAW_SOURCE, WHOLE)
    with ev_config.lake_connect() as con:
        meta = table_metadata(con, "osm_pois", written)
    meta["geoparquet"] = dg.MetadataValue.path(str(geoparquet))
    meta["per_category"] = dg.MetadataValue.json(pois["category"].value_counts().to_dict() if written else {})
    meta["per_area"] = dg.MetadataValue.json({area: int((pois["area"] == area).sum()) for area in osm_pulls})
    yield dg.MaterializeResult(asset_key=["raw", "osm_pois"], metadata=meta)

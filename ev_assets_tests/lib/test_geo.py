import pandas as pd
import pytest

from ev_assets.lib.geo import poi_station_map


def test_pois_within_radius_are_mapped_with_distance():
    # Köln Dom; one POI ~111 m north (0.001° lat), one ~1.1 km north, one without coordinates
    stations = pd.DataFrame({"station_id": ["s1", "s2"], "latitude": [50.9413, None], "longitude": [6.9583, 6.95]})
    pois = pd.DataFrame(
        {
            "poi_id": ["node/1", "node/2", "node/3"],
            "category": ["supermarket", "cafe", "fuel"],
            "latitude": [50.9423, 50.9513, None],
            "longitude": [6.9583, 6.9583, 6.9583],
        }
    )
    result = poi_station_map(stations, pois, radius_m=500)
    assert result[["station_id", "poi_id", "category"]].values.tolist() == [["s1", "node/1", "supermarket"]]
    assert result["distance_m"].iloc[0] == pytest.approx(111.2, abs=1.0)
    assert result["radius_m"].iloc[0] == 500

    wider = poi_station_map(stations, pois, radius_m=1500)
    assert wider["poi_id"].tolist() == ["node/1", "node/2"]


def test_no_pois_gives_an_empty_mapping():
    stations = pd.DataFrame({"station_id": ["s1"], "latitude": [50.94], "longitude": [6.96]})
    empty = pd.DataFrame(columns=["poi_id", "category", "latitude", "longitude"])
    assert poi_station_map(stations, empty, 500).empty

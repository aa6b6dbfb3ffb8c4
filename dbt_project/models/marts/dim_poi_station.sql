{#- Which POIs lie near which charging station (computed in Python with geopandas before dbt). -#}

select
    {{ surrogate_key(['station_id', 'poi_id']) }} as poi_station_id,
    station_id,
    poi_id,
    category,
    distance_m,
    radius_m
from {{ ref('stg_geo__poi_station_map') }}

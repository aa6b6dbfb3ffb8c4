{#- Which POIs lie near which charging station (computed in Python with geopandas before dbt). -#}
{#- Built after the dimensions its relationship tests check against, so those tests run with it: -#}
-- depends_on: {{ ref('dim_station') }}
-- depends_on: {{ ref('dim_poi') }}

select
    {{ surrogate_key(['station_id', 'poi_id']) }} as poi_station_id,
    station_id,
    poi_id,
    category,
    distance_m,
    radius_m
from {{ ref('stg_geo__poi_station_map') }}

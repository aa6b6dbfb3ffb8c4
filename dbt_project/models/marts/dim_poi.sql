{#- Points of interest from OpenStreetMap, once per POI (a POI near two areas was pulled with both). -#}

with

pois as (
    select * from {{ ref('stg_osm__pois') }}
),

one_row_per_poi as (
    select *
    from pois
    qualify row_number() over (partition by poi_id order by area) = 1
)

select
    poi_id,
    poi_name,
    category,
    tag_key,
    tag_value,
    area,
    longitude,
    latitude,
    geometry_wkt
from one_row_per_poi

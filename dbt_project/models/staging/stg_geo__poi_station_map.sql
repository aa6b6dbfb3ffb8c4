with

source as (
    select * from {{ source('raw', 'poi_station_map') }}
),

renamed as (
    select
        station_id,
        poi_id,
        lower(category) as category,
        distance_m,
        radius_m
    from source
),

deduplicated as (
    -- a POI found twice for a station (overlapping areas) keeps its nearest match
    select *
    from renamed
    qualify row_number() over (partition by station_id, poi_id order by distance_m, radius_m) = 1
)

select * from deduplicated

with

source as (
    select * from {{ source('raw', 'osm_pois') }}
),

renamed as (
    select
        poi_id,
        area,
        lower(category) as category,
        tag_key,
        tag_value,
        {{ clean_text('name') }} as poi_name,
        longitude,
        latitude,
        geometry_wkt
    from source
),

deduplicated as (
    -- one row per POI and area (a reload of an area repeats its POIs)
    select *
    from renamed
    qualify row_number() over (partition by poi_id, area order by category, tag_key, tag_value) = 1
)

select * from deduplicated

with

source as (
    select * from {{ source('raw', 'chargingstations') }}
),

renamed as (
    select
        station_id,
        city_slug,
        {{ clean_text('name') }} as station_name,
        {{ clean_text('address') }} as address,
        {{ clean_text('city') }} as city,
        {{ clean_text('postal_code') }} as postal_code,
        upper({{ clean_text('country') }}) as country,
        latitude,
        longitude,
        {{ clean_text('operator_name') }} as operator_name,
        {{ clean_text('operator_hotline') }} as operator_hotline,
        {{ clean_text('owner') }} as owner,
        roaming as is_roaming,
        twentyfourseven as is_open_24_7,
        {{ clean_text('opening_times') }} as opening_times_json,
        {{ clean_text('directions') }} as directions,
        attr_hash,
        first_seen_at,
        last_seen_at
    from source
),

version_seen as (
    -- a version loaded twice (a re-run of a load) keeps its earliest and latest sighting
    select
        station_id,
        attr_hash,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from renamed
    group by station_id, attr_hash
),

one_row_per_version as (
    select {{ ev_assets.star_exclude(['first_seen_at', 'last_seen_at']) }}
    from renamed
    qualify row_number() over (partition by station_id, attr_hash order by last_seen_at desc) = 1
)

select
    one_row_per_version.*,
    version_seen.first_seen_at,
    version_seen.last_seen_at
from one_row_per_version
inner join version_seen using (station_id, attr_hash)

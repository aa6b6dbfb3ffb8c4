{#- Charging stations as a type-2 slowly changing dimension: one row per master-data version. -#}

with

station_versions as (
    select * from {{ ref('stg_chargecloud__stations') }}
),

versioned as (
    select
        *,
        -- a version is valid from its first sighting until the next version was first seen
        first_seen_at as valid_from,
        lead(first_seen_at) over (partition by station_id order by first_seen_at) as valid_to
    from station_versions
)

select
    {{ surrogate_key(['station_id', 'valid_from']) }} as station_key,
    station_id,
    city_slug,
    station_name,
    address,
    city,
    postal_code,
    country,
    latitude,
    longitude,
    operator_name,
    -- the same operator under any spelling (macro operator_key, docs block operator_key)
    {{ operator_key('operator_name') }} as operator_key,
    operator_hotline,
    owner,
    is_roaming,
    is_open_24_7,
    opening_times_json,
    attr_hash,
    valid_from,
    valid_to,
    valid_to is null as is_current
from versioned

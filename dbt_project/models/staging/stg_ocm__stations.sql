{#- One row per Open Charge Map POI: its latest version (the most recently verified entry on a tie). -#}

with

ranked as (
    select
        *,
        row_number() over (
            partition by ocm_id
            order by first_pulled_at desc nulls last, last_verified_at desc nulls last, raw_file desc nulls last
        ) as version_rank
    from {{ ref('stg_ocm__station_versions') }}
)

select
    ocm_id,
    ocm_uuid,
    station_name,
    address,
    city,
    state,
    postal_code,
    country,
    latitude,
    longitude,
    operator_id,
    operator_name,
    usage_type_id,
    usage_type,
    status_type_id,
    status_type,
    number_of_points,
    max_power_kw,
    connection_count,
    last_verified_at,
    created_at,
    raw_file,
    first_pulled_at
from ranked
where version_rank = 1

{#- Connectors as a type-2 slowly changing dimension: one row per master-data version. -#}

with

connector_versions as (
    select * from {{ ref('stg_chargecloud__connectors') }}
),

versioned as (
    select
        *,
        first_seen_at as valid_from,
        lead(first_seen_at) over (partition by connector_id order by first_seen_at) as valid_to
    from connector_versions
)

select
    {{ surrogate_key(['connector_id', 'valid_from']) }} as connector_key,
    connector_id,
    charging_point_id,
    station_id,
    standard,
    format,
    power_type,
    ampere,
    voltage,
    max_power_kw,
    rated_power_kw,
    tariff_id,
    attr_hash,
    valid_from,
    valid_to,
    valid_to is null as is_current
from versioned

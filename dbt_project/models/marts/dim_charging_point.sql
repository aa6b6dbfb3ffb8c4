{#- Charging points (EVSEs) as a type-2 slowly changing dimension: one row per master-data version. -#}

with

charging_point_versions as (
    select * from {{ ref('stg_chargecloud__charging_points') }}
),

versioned as (
    select
        *,
        first_seen_at as valid_from,
        lead(first_seen_at) over (partition by charging_point_id order by first_seen_at) as valid_to
    from charging_point_versions
)

select
    {{ surrogate_key(['charging_point_id', 'valid_from']) }} as charging_point_key,
    charging_point_id,
    evse_uid,
    station_id,
    physical_reference,
    floor_level,
    vehicle_type,
    capabilities,
    charge_point_position,
    charging_station_position,
    parking_space_numbers,
    public_comment,
    is_roaming,
    attr_hash,
    valid_from,
    valid_to,
    valid_to is null as is_current
from versioned

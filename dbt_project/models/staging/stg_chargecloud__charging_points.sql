with

source as (
    select * from {{ source('raw', 'chargingpoints') }}
),

renamed as (
    select
        charging_point_id,
        {{ clean_text('evse_uid') }} as evse_uid,
        station_id,
        {{ clean_text('physical_reference') }} as physical_reference,
        {{ clean_text('floor_level') }} as floor_level,
        {{ clean_text('vehicle_type') }} as vehicle_type,
        {{ clean_text('capabilities') }} as capabilities,
        {{ clean_text('charge_point_position') }} as charge_point_position,
        {{ clean_text('charging_station_position') }} as charging_station_position,
        {{ clean_text('parking_space_numbers') }} as parking_space_numbers,
        {{ clean_text('public_comment') }} as public_comment,
        roaming as is_roaming,
        attr_hash,
        first_seen_at,
        last_seen_at
    from source
),

version_seen as (
    select
        charging_point_id,
        attr_hash,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from renamed
    group by charging_point_id, attr_hash
),

one_row_per_version as (
    select {{ ev_assets.star_exclude(['first_seen_at', 'last_seen_at']) }}
    from renamed
    qualify row_number() over (partition by charging_point_id, attr_hash order by last_seen_at desc) = 1
)

select
    one_row_per_version.*,
    version_seen.first_seen_at,
    version_seen.last_seen_at
from one_row_per_version
inner join version_seen using (charging_point_id, attr_hash)

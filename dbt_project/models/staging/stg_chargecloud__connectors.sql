with

source as (
    select * from {{ source('raw', 'connectors') }}
),

renamed as (
    select
        connector_id,
        charging_point_id,
        station_id,
        upper({{ clean_text('standard') }}) as standard,
        upper({{ clean_text('format') }}) as format,
        upper({{ clean_text('power_type') }}) as power_type,
        ampere,
        voltage,
        -- 0 means "not given" in the feed
        nullif(max_power_kw, 0) as max_power_kw,
        {{ clean_text('tariff_id') }} as tariff_id,
        attr_hash,
        first_seen_at,
        last_seen_at
    from source
),

with_rated_power as (
    select
        *,
        -- The power used for energy bounds: the stated maximum, else current x voltage (x sqrt 3 for
        -- three-phase with line voltage, x 3 with phase voltage).
        coalesce(
            max_power_kw,
            ampere * voltage / 1000.0 * case
                when power_type = 'AC_3_PHASE' and voltage >= 380 then sqrt(3)
                when power_type = 'AC_3_PHASE' then 3
                else 1
            end
        ) as rated_power_kw
    from renamed
),

version_seen as (
    select
        connector_id,
        attr_hash,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at
    from with_rated_power
    group by connector_id, attr_hash
),

one_row_per_version as (
    select {{ ev_assets.star_exclude(['first_seen_at', 'last_seen_at']) }}
    from with_rated_power
    qualify row_number() over (partition by connector_id, attr_hash order by last_seen_at desc) = 1
)

select
    one_row_per_version.*,
    version_seen.first_seen_at,
    version_seen.last_seen_at
from one_row_per_version
inner join version_seen using (connector_id, attr_hash)

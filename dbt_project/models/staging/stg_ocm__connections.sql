with

source as (
    select * from {{ source('raw', 'ocm_connections') }}
),

renamed as (
    select
        connection_id,
        ocm_id,
        connection_type_id,
        {{ clean_text('connection_type') }} as connection_type,
        current_type_id,
        {{ clean_text('current_type') }} as current_type,
        level_id,
        status_type_id,
        power_kw,
        coalesce(quantity, 1) as quantity
    from source
)

-- the same connection comes with every pull of its POI
select distinct * from renamed

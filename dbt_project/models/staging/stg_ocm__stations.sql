with

source as (
    select * from {{ source('raw', 'ocm_stations') }}
),

renamed as (
    select
        ocm_id,
        uuid as ocm_uuid,
        {{ clean_text('title') }} as station_name,
        {{ clean_text('address') }} as address,
        {{ clean_text('town') }} as city,
        {{ clean_text('state') }} as state,
        {{ clean_text('postcode') }} as postal_code,
        upper({{ clean_text('country_iso') }}) as country,
        latitude,
        longitude,
        operator_id,
        {{ clean_text('operator_name') }} as operator_name,
        usage_type_id,
        {{ clean_text('usage_type') }} as usage_type,
        status_type_id,
        {{ clean_text('status_type') }} as status_type,
        number_of_points,
        max_power_kw,
        connection_count,
        date_last_verified as last_verified_at,
        date_created as created_at,
        raw_file
    from source
),

deduplicated as (
    -- every pull lists a POI again: keep its most recently verified entry (latest pull on a tie)
    select *
    from renamed
    qualify row_number() over (
        partition by ocm_id
        order by last_verified_at desc nulls last, raw_file desc nulls last
    ) = 1
)

select * from deduplicated

{#- Every version of every Open Charge Map POI over the stored pulls (raw.ocm_stations keeps a new row when a
    pull gives a POI other values), renamed and cleaned. -#}

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
        raw_file,
        first_pulled_at
    from source
)

select * from renamed

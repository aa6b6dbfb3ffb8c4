with

source as (
    select * from {{ source('raw', 'quarantine') }}
),

renamed as (
    select
        lower(source) as source_name,
        {{ clean_text('partition_key') }} as partition_key,
        level as record_level,
        {{ clean_text('record_id') }} as record_id,
        reason,
        record as record_json,
        raw_file
    from source
)

-- identical rows from a re-run of a load count once
select distinct * from renamed

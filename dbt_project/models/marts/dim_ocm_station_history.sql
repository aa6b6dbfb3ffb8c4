{#-
    Type-2 history of the Open Charge Map registry: one row per version of a POI, valid from the pull that first
    gave it until the pull that gave other values (valid_to null: the current version). A POI the registry
    dropped keeps its last version as current.
-#}

select
    ocm_id,
    ocm_uuid,
    station_name,
    address,
    city,
    postal_code,
    country,
    latitude,
    longitude,
    operator_id,
    operator_name,
    usage_type,
    status_type,
    number_of_points,
    max_power_kw,
    connection_count,
    last_verified_at,
    first_pulled_at as valid_from,
    lead(first_pulled_at) over (partition by ocm_id order by first_pulled_at) as valid_to,
    lead(first_pulled_at) over (partition by ocm_id order by first_pulled_at) is null as is_current,
    row_number() over (partition by ocm_id order by first_pulled_at) as version
from {{ ref('stg_ocm__station_versions') }}

{#-
    Charge point operators: one row per operator_key (the rule: macro operator_key, docs block operator_key),
    with the display name and every spelling the stations' master data uses for it.
-#}

with

station_versions as (
    select station_id, operator_name, operator_key, is_current
    from {{ ref('dim_station') }}
),

spellings as (
    select
        operator_key,
        operator_name as spelling,
        {{ operator_name_normalized('operator_name') }} as normalized_name,
        count(distinct station_id) filter (where is_current) as current_stations,
        count(distinct station_id) as stations_ever
    from station_versions
    group by operator_key, operator_name
),

stations as (
    select operator_key, count(distinct station_id) filter (where is_current) as n_stations
    from station_versions
    group by operator_key
),

operators as (
    select
        operator_key,
        -- the display name: the spelling most stations use now (then ever; then the first alphabetically)
        {{ ev_assets.first_ordered('spelling', [('current_stations', 'desc'), ('stations_ever', 'desc'), ('spelling', 'asc')],
                                   where='spelling is not null') }} as display_name,
        {{ ev_assets.sorted_list('spelling', where='spelling is not null') }} as spellings,
        {{ ev_assets.sorted_list('normalized_name', distinct=true, where='normalized_name is not null') }}
            as normalized_names
    from spellings
    group by operator_key
)

select
    operators.operator_key,
    coalesce(operators.display_name, '(unknown)') as operator_name,
    coalesce(operators.spellings, {{ ev_assets.empty_list() }}) as spellings,
    cast(coalesce({{ ev_assets.list_length('operators.spellings') }}, 0) as integer) as n_spellings,
    coalesce(operators.normalized_names, {{ ev_assets.empty_list() }}) as normalized_names,
    cast(stations.n_stations as integer) as n_stations
from operators
inner join stations using (operator_key)

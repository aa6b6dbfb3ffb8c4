{{
    config(
        materialized='incremental',
        incremental_strategy=ev_assets.incremental_strategy(),
        partition_by=ev_assets.day_partition('session_date'),
        unique_key='session_id',
        on_schema_change='fail',
        pre_hook="{{ delete_from_window_start('session_start') }}",
    )
}}

{#-
    Charging sessions inferred from charging-point status runs (see the docs block inferred_session).
    Incremental like int_charging_sessions_inferred: the sessions it wrote in this window, i.e. those starting from
    the window start on and the session carried over from before it (still open, or last polled within the gap
    limit of the window start), so a day costs the same whatever the history.
-#}

{% call ev_assets.complete_day_partitions(['session_id'], 'session_start', 'session_date') %}
with

sessions as (
    select *
    from {{ ref('int_charging_sessions_inferred') }}
    {% if is_incremental() and window_start() is not none %}
    where session_start >= {{ window_start() }}
        or is_open
        or last_polled_at >= {{ window_start() }} - {{ gap_limit() }}
    {% endif %}
),

charging_point_versions as (
    select charging_point_key, charging_point_id, valid_from
    from {{ ref('dim_charging_point') }}
),

first_charging_point_versions as (
    select * from charging_point_versions
    qualify row_number() over (partition by charging_point_id order by valid_from) = 1
),

stations as (
    select station_id, city_slug
    from {{ ref('dim_station') }}
    where is_current
),

sessions_with_versions as (
    select
        sessions.*,
        coalesce(charging_point_versions.charging_point_key, first_charging_point_versions.charging_point_key)
            as charging_point_key
    from sessions
    {{ ev_assets.asof_left_join('charging_point_versions', 'sessions.charging_point_id', 'charging_point_id',
                                'sessions.session_start', 'valid_from') }}
    left join first_charging_point_versions
        on sessions.charging_point_id = first_charging_point_versions.charging_point_id
)

select
    sessions_with_versions.session_id,
    sessions_with_versions.charging_point_id,
    sessions_with_versions.charging_point_key,
    sessions_with_versions.station_id,
    stations.city_slug,
    sessions_with_versions.session_start,
    sessions_with_versions.session_end,
    sessions_with_versions.session_date,
    {{ ev_assets.hour_start('sessions_with_versions.session_start') }} as start_hour,
    sessions_with_versions.duration_minutes,
    sessions_with_versions.n_polls,
    sessions_with_versions.is_open,
    sessions_with_versions.rated_power_kw,
    sessions_with_versions.current_type,
    sessions_with_versions.energy_kwh_lower,
    sessions_with_versions.energy_kwh_upper
from sessions_with_versions
left join stations
    on sessions_with_versions.station_id = stations.station_id
{% endcall %}

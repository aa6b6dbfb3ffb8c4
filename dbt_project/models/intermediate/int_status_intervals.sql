{#- The runs of both levels in one place, for the models and checks that look at charging points and connectors. -#}
{{ config(materialized='view') }}

select 'charging_point' as level, *
from {{ ref('int_charging_point_status_runs') }}

union all

select 'connector' as level, *
from {{ ref('int_connector_status_runs') }}

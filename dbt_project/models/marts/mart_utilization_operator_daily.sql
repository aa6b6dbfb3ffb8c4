{#-
    Utilisation per operator (current master data, every spelling once: dim_operator) and UTC day; see the macro
    utilization_rollup.
-#}

with

operator_days as (
    {{ utilization_rollup('operator_key') }}
),

operators as (
    select operator_key, operator_name from {{ ref('dim_operator') }}
)

select
    operator_days.*,
    -- a station polled without master data has no operator in dim_operator: '(unknown)'
    coalesce(operators.operator_name, operator_days.operator_key) as operator_name
from operator_days
left join operators using (operator_key)

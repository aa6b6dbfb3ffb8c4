{#- Utilisation per operator (current master data) and UTC day; see the macro utilization_rollup. -#}
{{ utilization_rollup('operator_name') }}

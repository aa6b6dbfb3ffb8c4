{#- Utilisation per city (chargecloud city feed) and UTC day; see the macro utilization_rollup. -#}
{{ utilization_rollup('city_slug') }}

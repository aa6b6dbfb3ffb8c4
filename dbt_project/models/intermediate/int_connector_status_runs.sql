{{
    config(
        materialized='incremental',
        incremental_strategy=ev_assets.incremental_strategy(),
        partition_by=ev_assets.day_partition('interval_date'),
        unique_key=['item_id', 'interval_start'],
        on_schema_change='fail',
        pre_hook="{{ delete_from_window_start('interval_start') }}",
    )
}}

{#- Runs of equal status of the connectors (macro status_runs; docs blocks status_interval, processing_window). -#}

{% call ev_assets.complete_day_partitions(['item_id', 'interval_start'], 'interval_start', 'interval_date') %}
{{ status_runs(ref('fct_connector_status'), 'connector_id') }}
{% endcall %}

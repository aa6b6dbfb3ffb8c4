{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['item_id', 'interval_start'],
        on_schema_change='fail',
        pre_hook="{{ delete_from_window_start('interval_start') }}",
    )
}}

{#- Runs of equal status of the connectors (macro status_runs; docs blocks status_interval, processing_window). -#}

{{ status_runs(ref('fct_connector_status'), 'connector_id') }}

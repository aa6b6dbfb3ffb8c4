{#-
    Days and clock hours in a site's own time zone (docs block energy_attribution): the facts keep UTC instants,
    the KPIs count the local day (a session plugged in at 00:09 in Oslo counts on that Oslo day).
-#}

{% macro local_day(instant, time_zone) %}{{ return(adapter.dispatch('local_day', 'ev_assets')(instant, time_zone)) }}{% endmacro %}
{% macro default__local_day(instant, time_zone) -%}
    cast(timezone({{ time_zone }}, {{ instant }}) as date)
{%- endmacro %}
{% macro spark__local_day(instant, time_zone) -%}
    cast(from_utc_timestamp({{ instant }}, {{ time_zone }}) as date)
{%- endmacro %}

{% macro local_hour(instant, time_zone) %}{{ return(adapter.dispatch('local_hour', 'ev_assets')(instant, time_zone)) }}{% endmacro %}
{% macro default__local_hour(instant, time_zone) -%}
    hour(timezone({{ time_zone }}, {{ instant }}))
{%- endmacro %}
{% macro spark__local_hour(instant, time_zone) -%}
    hour(from_utc_timestamp({{ instant }}, {{ time_zone }}))
{%- endmacro %}

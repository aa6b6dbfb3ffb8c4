{#-
    Days and clock hours in a site's own time zone (docs block energy_attribution): the facts keep UTC instants,
    the KPIs count the local day (a session plugged in at 00:09 in Oslo counts on that Oslo day).
-#}

{% macro local_day(instant, time_zone) -%}
    cast(timezone({{ time_zone }}, {{ instant }}) as date)
{%- endmacro %}

{% macro local_hour(instant, time_zone) -%}
    hour(timezone({{ time_zone }}, {{ instant }}))
{%- endmacro %}

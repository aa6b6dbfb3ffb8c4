{#-
    Models land in plain schemas named by their layer (staging, intermediate, marts) rather than dbt's
    default '<target schema>_<custom schema>', so readers of the warehouse see stable names.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}

{% macro clean_text(column) -%}
    {#- Trimmed text, with empty strings as NULL (the feeds send "" for unknown values). -#}
    nullif(trim({{ column }}), '')
{%- endmacro %}


{% macro surrogate_key(columns) -%}
    {#- A stable text key over the given columns (md5 of their '|'-joined text; NULL parts as ''). -#}
    md5(concat_ws('|', {% for column in columns %}coalesce(cast({{ column }} as varchar), ''){{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}

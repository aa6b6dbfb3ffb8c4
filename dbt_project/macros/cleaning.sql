{% macro clean_text(column) -%}
    {#- Trimmed text, with empty strings as NULL (the feeds send "" for unknown values). -#}
    nullif(trim({{ column }}), '')
{%- endmacro %}


{% macro surrogate_key(columns) -%}
    {#- A stable text key over the given columns (md5 of their '|'-joined text; NULL parts as ''). -#}
    md5(concat_ws('|', {% for column in columns %}coalesce({{ ev_assets.text_of(column) }}, ''){{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}


{% macro first_load_of_each_answer(relation) -%}
    {#-
        A city's answer that repeats its timestamp in a later poll slot was loaded twice. Per (city, answer
        time) the first slot is the one to keep: one row per city and poll, so the status tables are deduplicated
        by a semi join on it instead of sorting every status row. (Ingestion already keeps one status per id
        within a poll.)
    -#}
    select city_slug, poll_time, min(poll_slot) as poll_slot
    from {{ relation }}
    -- explicit: DuckDB does not push the consumers' filter on the poll time through the join into this group-by,
    -- so without it every daily run would scan the whole status history
    where {{ in_window('poll_time') }}
    group by city_slug, poll_time
{%- endmacro %}

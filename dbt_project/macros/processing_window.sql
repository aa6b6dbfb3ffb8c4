{#-
    The processing window [min_date, max_date): UTC days, the partition keys; from --vars min_date/max_date, else
    from the environment variables EV_DBT_MIN_DATE/EV_DBT_MAX_DATE (how Dagster and the benchmark pass them).
    Absent or empty vars mean "process everything". All day boundaries are UTC (the profile pins TimeZone).
-#}

{% macro window_date(name) -%}
    {#- The var as 'YYYY-MM-DD', or none. YAML --vars may hand over a date object: take its text. -#}
    {#- Dagster gives the window as EV_DBT_MIN_DATE / EV_DBT_MAX_DATE, read only when the SQL is compiled: a
        window in --vars would make every partition parse the whole project again (~4-6 s), and an environment
        variable read while parsing would re-parse every model that reads it. -#}
    {%- set value = var(name, none) -%}
    {%- if value is none and execute -%}
        {%- set value = env_var('EV_DBT_' ~ (name | upper), '') -%}
    {%- endif -%}
    {%- if value is none or (value | string | trim) == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', text) -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ "=" ~ text ~ " is not a date like 2022-01-10") }}
    {%- endif -%}
    {{ return(text) }}
{%- endmacro %}


{% macro window_start() -%}
    {#- SQL literal of the window's first instant (UTC midnight of min_date), or none. -#}
    {%- set day = window_date('min_date') -%}
    {{ return(none if day is none else ev_assets.utc_timestamp_literal(day ~ " 00:00:00")) }}
{%- endmacro %}


{% macro window_end() -%}
    {#- SQL literal of the first instant after the window (UTC midnight of max_date), or none. -#}
    {%- set day = window_date('max_date') -%}
    {{ return(none if day is none else ev_assets.utc_timestamp_literal(day ~ " 00:00:00")) }}
{%- endmacro %}


{% macro in_window(column) -%}
    {#- A predicate keeping `column` inside the window ('true' when no window is given). -#}
    {%- set conditions = [] -%}
    {%- if window_start() is not none -%}
        {%- do conditions.append(column ~ " >= " ~ window_start()) -%}
    {%- endif -%}
    {%- if window_end() is not none -%}
        {%- do conditions.append(column ~ " < " ~ window_end()) -%}
    {%- endif -%}
    {{ return("(" ~ (conditions | join(" and ") if conditions else "true") ~ ")") }}
{%- endmacro %}


{% macro poll_interval() -%}
    {#- What one poll stands for. -#}
    {{ ev_assets.minutes_interval(var('poll_interval_minutes') | int) }}
{%- endmacro %}


{% macro gap_limit_minutes() -%}
    {#- A longer gap between two polls of an item ends its run: we do not know what happened in between. -#}
    {{ return((var('gap_multiple') | int) * (var('poll_interval_minutes') | int)) }}
{%- endmacro %}


{% macro gap_limit() -%}
    {#- The gap limit as an interval. -#}
    {{ ev_assets.minutes_interval(gap_limit_minutes()) }}
{%- endmacro %}


{% macro gap_limit_us() -%}
    {#- The gap limit in microseconds, to compare with epoch_us() differences (much faster per row). -#}
    {{ gap_limit_minutes() * 60 * 1000000 }}
{%- endmacro %}


{% macro get_where_subquery(relation) -%}
    {#-
        dbt's hook for the `where` config of data tests, extended with one placeholder:
        `where: "__window__(polled_at)"` limits a test to the processing window, so daily runs test the day
        they wrote instead of re-reading the whole history.
    -#}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set placeholder = modules.re.search('__window__\((\w+)\)', where) -%}
        {%- if placeholder -%}
            {%- set where = where.replace(placeholder.group(0), in_window(placeholder.group(1))) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}


{% macro from_window_start(column) -%}
    {#- A predicate keeping `column` from the window start on, with no upper bound ('true' without a window). -#}
    {{ return("(" ~ column ~ " >= " ~ window_start() ~ ")" if window_start() is not none else "(true)") }}
{%- endmacro %}


{% macro delete_from_window_start(column) -%}
    {#-
        Pre-hook of the incremental models that carry runs over: before an incremental run, drop the stored rows
        from the window start on. The run recomputes all of them (up to the end of the data processed so far),
        so rows that would no longer exist (e.g. a run first seen without the day before it) cannot linger.
        Rows before the window are replaced through the unique key. (Not on Spark, whose tables cannot delete
        rows: insert_overwrite replaces the day partitions, macro complete_day_partitions.)
    -#}
    {%- if is_incremental() and window_start() is not none and target.type != 'spark' -%}
        delete from {{ this }} where {{ column }} >= {{ window_start() }}
    {%- endif -%}
{%- endmacro %}

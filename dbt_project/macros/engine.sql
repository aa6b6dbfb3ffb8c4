{#-
    SQL that differs between the two engines (profiles.yml: targets `duckdb` and `spark`), each behind
    adapter.dispatch: the models call `ev_assets.<macro>(...)` and get DuckDB's form or Spark's. The DuckDB forms
    are the SQL the models had before Spark came (so DuckDB results did not change); each Spark form computes the
    same values (the two-engine test, ev_assets_tests/dbt/test_spark.py, compares every mart row for row).

    Portable without a macro, and kept so: a count divided by a literal uses a DOUBLE literal (`n_polls * 10 / 60e0`):
    Spark types `60.0` as DECIMAL and rounds such a quotient to 6 decimals, where DuckDB divides in DOUBLE.
-#}

{# ---- types and literals ------------------------------------------------------------------------------- #}

{% macro timestamptz_type() %}{{ return(adapter.dispatch('timestamptz_type', 'ev_assets')()) }}{% endmacro %}
{% macro default__timestamptz_type() %}timestamptz{% endmacro %}
{#- Spark's TIMESTAMP is an instant shown in the session time zone (UTC, profiles.yml). -#}
{% macro spark__timestamptz_type() %}timestamp{% endmacro %}

{% macro text_type() %}{{ return(adapter.dispatch('text_type', 'ev_assets')()) }}{% endmacro %}
{% macro default__text_type() %}varchar{% endmacro %}
{% macro spark__text_type() %}string{% endmacro %}

{% macro utc_timestamp_literal(text) %}{{ return(adapter.dispatch('utc_timestamp_literal', 'ev_assets')(text)) }}{% endmacro %}
{#- `text` like '2022-01-10 00:00:00' or '2022-01-10 08:00:00.000000', a UTC time. -#}
{% macro default__utc_timestamp_literal(text) %}timestamptz '{{ text }}+00'{% endmacro %}
{% macro spark__utc_timestamp_literal(text) %}timestamp '{{ text }}'{% endmacro %}

{% macro text_of(expression) %}{{ return(adapter.dispatch('text_of', 'ev_assets')(expression)) }}{% endmacro %}
{#- A value as text, for keys: DuckDB writes a UTC timestamptz as '2022-01-10 08:00:00+00'; Spark gets the same
    text (its TIMESTAMP prints without the offset). -#}
{% macro default__text_of(expression) %}cast({{ expression }} as varchar){% endmacro %}
{% macro spark__text_of(expression) -%}
    case when typeof({{ expression }}) = 'timestamp' then concat(cast({{ expression }} as string), '+00')
         else cast({{ expression }} as string) end
{%- endmacro %}

{# ---- time arithmetic ---------------------------------------------------------------------------------- #}

{% macro epoch_us(expression) %}{{ return(adapter.dispatch('epoch_us', 'ev_assets')(expression)) }}{% endmacro %}
{#- Microseconds since 1970-01-01 UTC (a BIGINT). -#}
{% macro default__epoch_us(expression) %}epoch_us({{ expression }}){% endmacro %}
{% macro spark__epoch_us(expression) %}unix_micros({{ expression }}){% endmacro %}

{% macro seconds_between(start, end) %}{{ return(adapter.dispatch('seconds_between', 'ev_assets')(start, end)) }}{% endmacro %}
{#- end - start in seconds (a DOUBLE). -#}
{% macro default__seconds_between(start, end) %}epoch({{ end }} - {{ start }}){% endmacro %}
{% macro spark__seconds_between(start, end) %}((unix_micros({{ end }}) - unix_micros({{ start }})) / 1e6){% endmacro %}

{% macro add_microseconds(timestamp, microseconds) %}{{ return(adapter.dispatch('add_microseconds', 'ev_assets')(timestamp, microseconds)) }}{% endmacro %}
{% macro default__add_microseconds(timestamp, microseconds) %}{{ timestamp }} + to_microseconds({{ microseconds }}){% endmacro %}
{% macro spark__add_microseconds(timestamp, microseconds) %}timestamp_micros(unix_micros({{ timestamp }}) + {{ microseconds }}){% endmacro %}

{% macro local_to_utc(time_zone, local_time) %}{{ return(adapter.dispatch('local_to_utc', 'ev_assets')(time_zone, local_time)) }}{% endmacro %}
{#- A naive local wall time in `time_zone` as the instant it names. -#}
{% macro default__local_to_utc(time_zone, local_time) %}timezone({{ time_zone }}, {{ local_time }}){% endmacro %}
{% macro spark__local_to_utc(time_zone, local_time) %}to_utc_timestamp({{ local_time }}, {{ time_zone }}){% endmacro %}

{% macro hour_start(expression) %}{{ return(adapter.dispatch('hour_start', 'ev_assets')(expression)) }}{% endmacro %}
{#- The UTC hour a time falls in. -#}
{% macro default__hour_start(expression) %}time_bucket(interval 1 hour, {{ expression }}){% endmacro %}
{% macro spark__hour_start(expression) %}date_trunc('HOUR', {{ expression }}){% endmacro %}

{% macro format_utc_timestamp(expression) %}{{ return(adapter.dispatch('format_utc_timestamp', 'ev_assets')(expression)) }}{% endmacro %}
{#- A UTC time as 'YYYY-MM-DD HH:MM:SS.ffffff' (for utc_timestamp_literal). -#}
{% macro default__format_utc_timestamp(expression) %}strftime({{ expression }}, '%Y-%m-%d %H:%M:%S.%f'){% endmacro %}
{% macro spark__format_utc_timestamp(expression) %}date_format({{ expression }}, 'yyyy-MM-dd HH:mm:ss.SSSSSS'){% endmacro %}

{% macro format_date(expression) %}{{ return(adapter.dispatch('format_date', 'ev_assets')(expression)) }}{% endmacro %}
{% macro default__format_date(expression) %}strftime({{ expression }}, '%Y-%m-%d'){% endmacro %}
{% macro spark__format_date(expression) %}date_format({{ expression }}, 'yyyy-MM-dd'){% endmacro %}

{# ---- series ------------------------------------------------------------------------------------------- #}

{% macro unnest_days(first_day, last_day) %}{{ return(adapter.dispatch('unnest_days', 'ev_assets')(first_day, last_day)) }}{% endmacro %}
{#- In a select list: one row per DATE from first_day to last_day (both included). -#}
{% macro default__unnest_days(first_day, last_day) %}cast(unnest(generate_series({{ first_day }}, {{ last_day }}, interval 1 day)) as date){% endmacro %}
{% macro spark__unnest_days(first_day, last_day) %}explode(sequence({{ first_day }}, {{ last_day }}, interval 1 day)){% endmacro %}

{% macro unnest_series(start, stop, step) %}{{ return(adapter.dispatch('unnest_series', 'ev_assets')(start, stop, step)) }}{% endmacro %}
{#- In a select list: one row per value from start to stop (both included) by step (an interval). -#}
{% macro default__unnest_series(start, stop, step) %}unnest(generate_series({{ start }}, {{ stop }}, {{ step }})){% endmacro %}
{% macro spark__unnest_series(start, stop, step) %}explode(sequence({{ start }}, {{ stop }}, {{ step }})){% endmacro %}

{# ---- aggregates --------------------------------------------------------------------------------------- #}

{% macro arg_max(value, by) %}{{ return(adapter.dispatch('arg_max', 'ev_assets')(value, by)) }}{% endmacro %}
{% macro default__arg_max(value, by) %}arg_max({{ value }}, {{ by }}){% endmacro %}
{% macro spark__arg_max(value, by) %}max_by({{ value }}, {{ by }}){% endmacro %}

{% macro arg_min(value, by) %}{{ return(adapter.dispatch('arg_min', 'ev_assets')(value, by)) }}{% endmacro %}
{% macro default__arg_min(value, by) %}arg_min({{ value }}, {{ by }}){% endmacro %}
{% macro spark__arg_min(value, by) %}min_by({{ value }}, {{ by }}){% endmacro %}

{% macro sorted_list(expression, distinct=false, where=none) %}{{ return(adapter.dispatch('sorted_list', 'ev_assets')(expression, distinct, where)) }}{% endmacro %}
{#- An aggregate: the values of the group (where `where` holds) as a list in ascending order. Give it non-NULL
    values (a `where` that drops NULLs): Spark's collect_list skips NULLs, DuckDB's list keeps them. -#}
{% macro default__sorted_list(expression, distinct, where) -%}
    list({{ 'distinct ' if distinct }}{{ expression }} order by {{ expression }}){% if where %} filter (where {{ where }}){% endif %}
{%- endmacro %}
{% macro spark__sorted_list(expression, distinct, where) -%}
    array_sort({{ 'collect_set' if distinct else 'collect_list' }}({{ expression }}){% if where %} filter (where {{ where }}){% endif %})
{%- endmacro %}

{% macro first_ordered(value, order_by, where=none) %}{{ return(adapter.dispatch('first_ordered', 'ev_assets')(value, order_by, where)) }}{% endmacro %}
{#- An aggregate: the group's first `value` (where `where` holds) in the order of `order_by`, a list of
    (expression, 'asc' | 'desc') pairs. On Spark the 'desc' expressions must be numbers. -#}
{% macro default__first_ordered(value, order_by, where) -%}
    first({{ value }} order by {% for expression, direction in order_by %}{{ expression }} {{ direction }}{{ ", " if not loop.last }}{% endfor %})
    {%- if where %} filter (where {{ where }}){% endif %}
{%- endmacro %}
{% macro spark__first_ordered(value, order_by, where) -%}
    try_element_at(array_sort(collect_list(named_struct(
        {%- for expression, direction in order_by %}
        'k{{ loop.index }}', {{ '-' if direction == 'desc' }}({{ expression }}),
        {%- endfor %}
        'value', {{ value }}
    )){% if where %} filter (where {{ where }}){% endif %}), 1).value
{%- endmacro %}

{% macro empty_list() %}{{ return(adapter.dispatch('empty_list', 'ev_assets')()) }}{% endmacro %}
{% macro default__empty_list() %}[]{% endmacro %}
{% macro spark__empty_list() %}array(){% endmacro %}

{% macro list_length(expression) %}{{ return(adapter.dispatch('list_length', 'ev_assets')(expression)) }}{% endmacro %}
{#- NULL for a NULL list (Spark's size gives -1 there). -#}
{% macro default__list_length(expression) %}len({{ expression }}){% endmacro %}
{% macro spark__list_length(expression) %}case when {{ expression }} is not null then size({{ expression }}) end{% endmacro %}

{# ---- text --------------------------------------------------------------------------------------------- #}

{% macro regexp_replace_all(text, pattern, replacement) %}{{ return(adapter.dispatch('regexp_replace_all', 'ev_assets')(text, pattern, replacement)) }}{% endmacro %}
{% macro default__regexp_replace_all(text, pattern, replacement) %}regexp_replace({{ text }}, {{ pattern }}, {{ replacement }}, 'g'){% endmacro %}
{% macro spark__regexp_replace_all(text, pattern, replacement) %}regexp_replace({{ text }}, {{ pattern }}, {{ replacement }}){% endmacro %}

{% macro strip_accents(text) %}{{ return(adapter.dispatch('strip_accents', 'ev_assets')(text)) }}{% endmacro %}
{% macro default__strip_accents(text) %}strip_accents({{ text }}){% endmacro %}
{#- Spark has no Unicode normalization: the accented lower-case Latin letters (Latin-1 and Latin Extended-A, what
    German, French, Scandinavian, Polish, Czech or Turkish names use) mapped to their base letter. -#}
{% macro spark__strip_accents(text) -%}
    translate({{ text }},
        'àáâãåāăąçćĉċčďđèéêëēĕėęěĝğġģĥħìíîïĩīĭįıĵķĺļľŀłñńņňòóôõøōŏőŕŗřśŝşšţťŧùúûũůūŭűųŵýÿŷźżž',
        'aaaaaaaacccccddeeeeeeeeegggghhiiiiiiiiijklllllnnnnoooooooorrrssssttttuuuuuuuuuwyyyzzz')
{%- endmacro %}

{# ---- relations ---------------------------------------------------------------------------------------- #}

{% macro star_exclude(columns) %}{{ return(adapter.dispatch('star_exclude', 'ev_assets')(columns)) }}{% endmacro %}
{#- `select {{ star_exclude(['a', 'b']) }} from ...`: every column but these. -#}
{% macro default__star_exclude(columns) %}* exclude ({{ columns | join(', ') }}){% endmacro %}
{% macro spark__star_exclude(columns) %}* except ({{ columns | join(', ') }}){% endmacro %}

{% macro semi_join() %}{{ return(adapter.dispatch('semi_join', 'ev_assets')()) }}{% endmacro %}
{% macro default__semi_join() %}semi join{% endmacro %}
{% macro spark__semi_join() %}left semi join{% endmacro %}

{% macro hash64(expression) %}{{ return(adapter.dispatch('hash64', 'ev_assets')(expression)) }}{% endmacro %}
{#- A 64-bit hash, to sort and partition on (never shown). -#}
{% macro default__hash64(expression) %}hash({{ expression }}){% endmacro %}
{% macro spark__hash64(expression) %}xxhash64({{ expression }}){% endmacro %}

{% macro asof_left_join(relation, left_key, right_key, left_time, right_time) %}{{ return(adapter.dispatch('asof_left_join', 'ev_assets')(relation, left_key, right_key, left_time, right_time)) }}{% endmacro %}
{#-
    `left join` of `relation` (a CTE name, also its alias) keeping per left row the right row of the same key with
    the latest `right_time` at or before `left_time`. Spark has no ASOF join: each right row is valid until the
    next one of its key, a range join (the right times of a key must differ, as valid_from of a dimension does).
-#}
{% macro default__asof_left_join(relation, left_key, right_key, left_time, right_time) -%}
    asof left join {{ relation }}
        on {{ left_key }} = {{ relation }}.{{ right_key }}
        and {{ left_time }} >= {{ relation }}.{{ right_time }}
{%- endmacro %}
{% macro spark__asof_left_join(relation, left_key, right_key, left_time, right_time) -%}
    left join (
        select *, lead({{ right_time }}) over (partition by {{ right_key }} order by {{ right_time }}) as asof_next_time
        from {{ relation }}
    ) as {{ relation }}
        on {{ left_key }} = {{ relation }}.{{ right_key }}
        and {{ left_time }} >= {{ relation }}.{{ right_time }}
        and ({{ relation }}.asof_next_time is null or {{ left_time }} < {{ relation }}.asof_next_time)
{%- endmacro %}

{# ---- dates (dim_time) --------------------------------------------------------------------------------- #}

{% macro iso_weekday(expression) %}{{ return(adapter.dispatch('iso_weekday', 'ev_assets')(expression)) }}{% endmacro %}
{#- 1 = Monday .. 7 = Sunday. -#}
{% macro default__iso_weekday(expression) %}isodow({{ expression }}){% endmacro %}
{% macro spark__iso_weekday(expression) %}extract(DAYOFWEEK_ISO from {{ expression }}){% endmacro %}

{% macro iso_year_week(expression) %}{{ return(adapter.dispatch('iso_year_week', 'ev_assets')(expression)) }}{% endmacro %}
{#- ISO year x 100 + ISO week, e.g. 202201. -#}
{% macro default__iso_year_week(expression) %}yearweek({{ expression }}){% endmacro %}
{% macro spark__iso_year_week(expression) %}(extract(YEAROFWEEK from {{ expression }}) * 100 + weekofyear({{ expression }})){% endmacro %}

{% macro weekday_name(expression) %}{{ return(adapter.dispatch('weekday_name', 'ev_assets')(expression)) }}{% endmacro %}
{#- 'Monday' .. 'Sunday'. -#}
{% macro default__weekday_name(expression) %}dayname({{ expression }}){% endmacro %}
{% macro spark__weekday_name(expression) %}date_format({{ expression }}, 'EEEE'){% endmacro %}

{% macro minutes_interval(minutes) %}{{ return(adapter.dispatch('minutes_interval', 'ev_assets')(minutes)) }}{% endmacro %}
{% macro default__minutes_interval(minutes) %}to_minutes({{ minutes }}){% endmacro %}
{% macro spark__minutes_interval(minutes) %}interval {{ minutes }} minutes{% endmacro %}

{# ---- the raw tables ----------------------------------------------------------------------------------- #}

{% macro register_raw_tables() %}{{ return(adapter.dispatch('register_raw_tables', 'ev_assets')()) }}{% endmacro %}
{#- on-run-start: DuckDB holds the raw tables itself (ingestion writes them); nothing to do. -#}
{% macro default__register_raw_tables() %}{% endmacro %}
{#-
    Spark: each source table of `raw` as a view over its Parquet folder `<raw_parquet_dir>/<table>`
    (ev_assets/lib/spark.py export_raw_tables writes them), replaced on every run so it follows the files.
-#}
{% macro spark__register_raw_tables() %}
    {%- if execute -%}
        {%- set data_dir = var('ev_data_dir', env_var('EV_DATA_DIR', '../data')) -%}
        {%- set root = var('raw_parquet_dir', none) or (data_dir ~ '/spark/raw') -%}
        {%- do run_query('create database if not exists raw') -%}
        {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
            {%- do run_query('create or replace view raw.' ~ source.name ~ ' as select * from parquet.`'
                             ~ root ~ '/' ~ source.name ~ '`') -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}

{# ---- incremental models ------------------------------------------------------------------------------- #}

{% macro incremental_strategy() %}{{ return(adapter.dispatch('incremental_strategy', 'ev_assets')()) }}{% endmacro %}
{#- DuckDB deletes the window's rows (by unique key, incremental predicates, pre-hooks) and inserts them again. -#}
{% macro default__incremental_strategy() %}{{ return('delete+insert') }}{% endmacro %}
{#- Spark's Parquet tables cannot delete rows: a run replaces the day partitions it writes (dynamic overwrite). -#}
{% macro spark__incremental_strategy() %}{{ return('insert_overwrite') }}{% endmacro %}

{% macro day_partition(day_column) %}{{ return(adapter.dispatch('day_partition', 'ev_assets')(day_column)) }}{% endmacro %}
{#- `partition_by` of an incremental model: its UTC day column on Spark; DuckDB tables have no partitions. -#}
{% macro default__day_partition(day_column) %}{{ return(none) }}{% endmacro %}
{% macro spark__day_partition(day_column) %}{{ return([day_column]) }}{% endmacro %}

{% macro day_of(time_column, day_column) %}{{ return(adapter.dispatch('day_of', 'ev_assets')(time_column, day_column)) }}{% endmacro %}
{#- The extra partition column `, cast(time_column as date) as day_column` of a model with no day column of its
    own, on Spark only (DuckDB's tables stay as they are). -#}
{% macro default__day_of(time_column, day_column) %}{% endmacro %}
{% macro spark__day_of(time_column, day_column) %}, cast({{ time_column }} as date) as {{ day_column }}{% endmacro %}

{% macro complete_day_partitions(unique_key, time_column, day_column) %}{{ return(adapter.dispatch('complete_day_partitions', 'ev_assets')(caller(), unique_key, time_column, day_column)) }}{% endmacro %}
{#-
    `{% call complete_day_partitions(...) %} <the model's select> {% endcall %}` in the models that carry rows
    over from before the window (runs and sessions that started on an earlier day and continue into it).
    DuckDB replaces those rows through the unique key: the select stays as it is.
-#}
{% macro default__complete_day_partitions(sql, unique_key, time_column, day_column) %}{{ sql }}{% endmacro %}
{#-
    Spark overwrites whole day partitions: a carried-over row would overwrite its earlier day with itself alone.
    So the earlier days the select touches get their other stored rows too (those before the window start that
    the select does not replace by unique key), the same rows DuckDB keeps.
-#}
{% macro spark__complete_day_partitions(sql, unique_key, time_column, day_column) %}
{%- if is_incremental() and window_start() is not none -%}
{%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
with new_rows as (
{{ sql }}
)

select {{ columns | join(', ') }} from new_rows

union all

select {% for column in columns %}stored.{{ column }}{{ ", " if not loop.last }}{% endfor %}
from {{ this }} as stored
where stored.{{ day_column }} in (select distinct {{ day_column }} from new_rows where {{ time_column }} < {{ window_start() }})
    and stored.{{ time_column }} < {{ window_start() }}
    and not exists (
        select 1 from new_rows
        where {% for key in unique_key %}new_rows.{{ key }} = stored.{{ key }}{{ " and " if not loop.last }}{% endfor %}
    )
{%- else -%}
{{ sql }}
{%- endif -%}
{% endmacro %}

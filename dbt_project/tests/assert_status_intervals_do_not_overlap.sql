-- The runs of one item never overlap: each starts at or after the end of the one before.
-- (Checked over the runs of the processing window and the run before each.)

with

runs as (
    select
        level,
        item_id,
        interval_start,
        interval_end,
        lag(interval_end) over (partition by level, item_id order by interval_start) as previous_interval_end
    from {{ ref('int_status_intervals') }}
    {% if window_start() is not none %}
    -- a day back is enough to reach the run before the window's first one for all but stuck items
    where interval_start >= {{ window_start() }} - interval 1 day
    {% endif %}
)

select *
from runs
where interval_start < previous_interval_end
    and {{ in_window('interval_start') }}

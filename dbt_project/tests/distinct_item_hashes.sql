-- The status runs sort on hash64(item_id) (macro status_runs): no two ids of a level that a window processes may
-- share a hash, or their polls would mix into one sequence. 64 bits make it very unlikely; this makes it
-- impossible to miss. (Checked over the runs the window wrote.)

select level, {{ ev_assets.hash64("item_id") }} as item_hash, count(distinct item_id) as n_ids
from {{ ref('int_status_intervals') }}
{% if window_start() is not none %}
where last_polled_at >= {{ window_start() }}
{% endif %}
group by level, item_hash
having count(distinct item_id) > 1

{#-
    No city's answer (city, poll time) was loaded under two poll slots. Ingestion keeps one status per id within
    a poll, so this is what "an item polled at most once per poll time" comes to, at the cost of one row per
    city and poll instead of a group per status row. Staging keeps the first slot's rows.
-#}
{% test loaded_once_per_answer(model) %}

select city_slug, poll_time, min(poll_slot) as first_slot, max(poll_slot) as last_slot
from {{ model }}
group by city_slug, poll_time
having min(poll_slot) <> max(poll_slot)

{% endtest %}

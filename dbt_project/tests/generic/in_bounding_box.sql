{#-
    Coordinates lie inside a bounding box (by default Germany's: lat 47.2-55.1, lon 5.8-15.1). Rows without
    coordinates are left to not_null tests.
-#}
{% test in_bounding_box(
    model,
    latitude_column='latitude',
    longitude_column='longitude',
    min_latitude=47.2,
    max_latitude=55.1,
    min_longitude=5.8,
    max_longitude=15.1
) %}

select *
from {{ model }}
where {{ latitude_column }} is not null
    and {{ longitude_column }} is not null
    and not (
        {{ latitude_column }} between {{ min_latitude }} and {{ max_latitude }}
        and {{ longitude_column }} between {{ min_longitude }} and {{ max_longitude }}
    )

{% endtest %}

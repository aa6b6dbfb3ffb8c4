{#- Every row satisfies `expression` (a SQL predicate over the model's columns). -#}
{% test expression_is_true(model, expression) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}

{% macro status_list(group) -%}
    {#-
        The statuses of a group as a SQL list ('OUTOFORDER', 'INOPERATIVE'): `group` names one of the status vars of
        dbt_project.yml (statuses, occupied_statuses, out_of_order_statuses), which the Python code reads too.
    -#}
    {%- for status in var(group) %}'{{ status }}'{{ ", " if not loop.last }}{% endfor -%}
{%- endmacro %}

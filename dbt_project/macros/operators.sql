{#-
    What counts as the same operator (docs block `operator_key`): the one home of the rule. dim_station gives
    every station version its operator_key with `operator_key(...)`; dim_operator shows the spellings it covers.
-#}

{% macro operator_legal_forms() -%}
    {#- Legal-form words dropped from the end of a name (after punctuation became spaces: "GmbH & Co. KG" is
        the words gmbh co kg, "e.V." is e v). -#}
    {{ return(['gmbh', 'mbh', 'ag', 'se', 'eg', 'kg', 'kgaa', 'ohg', 'gbr', 'ug', 'haftungsbeschraenkt', 'co',
               'ev', 'e v', 'ltd', 'inc', 'bv', 'nv']) }}
{%- endmacro %}


{% macro operator_aliases() -%}
    {#- Reviewed aliases: a normalized name -> the operator_key it belongs to, for names that are the same company
        but that no spelling rule can merge (an abbreviation beside the full name). Each needs evidence in the
        feed (same city feed and the same eMI3 operator id in the EVSE ids) and is listed in the docs block
        `operator_key`. -#}
    {{ return({
        'dew21': 'dortmunderenergieundwasserversorgung',
        'evdenergieversorgungdormagen': 'energieversorgungdormagen',
    }) }}
{%- endmacro %}


{% macro operator_name_normalized(column) -%}
    {#- Steps 1-4 of the rule: the name as lower-case letters and digits only, umlauts spelled out, without a
        legal form at its end; NULL for a missing name. The first word always stays, so a name that is only a
        legal form keeps it. -#}
    {%- set legal_forms = operator_legal_forms() | join('|') -%}
    nullif(replace(
        regexp_replace(
            trim({{ ev_assets.regexp_replace_all(
                ev_assets.strip_accents(
                    "replace(replace(replace(replace(lower(trim(" ~ column ~ ")), 'ä', 'ae'), 'ö', 'oe'), 'ü', 'ue'), 'ß', 'ss')"
                ),
                "'[^a-z0-9]+'", "' '"
            ) }}),
            '( ({{ legal_forms }}))+$', ''
        ),
        ' ', ''
    ), '')
{%- endmacro %}


{% macro operator_key(column) -%}
    {#- The operator_key of a name: its normalized form, mapped through the reviewed aliases; '(unknown)' for a
        missing name (no normalized name has parentheses, so it never meets a real operator). -#}
    {%- set aliases = operator_aliases() -%}
    coalesce(
        {%- if aliases %}
        case {{ operator_name_normalized(column) }}
            {%- for alias, key in aliases.items() %}
            when '{{ alias }}' then '{{ key }}'
            {%- endfor %}
            else {{ operator_name_normalized(column) }}
        end,
        {%- else %}
        {{ operator_name_normalized(column) }},
        {%- endif %}
        '(unknown)'
    )
{%- endmacro %}

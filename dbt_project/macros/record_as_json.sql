{#- A whole row as JSON text, for the quarantine: the record is kept exactly as it arrived. -#}
{% macro record_as_json(relation_alias) -%}
    {{ return(adapter.dispatch('record_as_json')(relation_alias)) }}
{%- endmacro %}

{% macro default__record_as_json(relation_alias) -%}
    cast(to_json({{ relation_alias }}) as varchar)
{%- endmacro %}

{% macro snowflake__record_as_json(relation_alias) -%}
    to_varchar(object_construct({{ relation_alias }}.*))
{%- endmacro %}

{#- Models land in the schema their folder names (staging, marts, quarantine...), not dbt's default
    "<target schema>_<custom schema>": the names a learner queries are the names in dbt_project.yml. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}

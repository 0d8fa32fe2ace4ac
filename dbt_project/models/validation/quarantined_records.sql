-- The quarantine: every raw record that failed validation, with the reason, kept as it arrived.
-- Grain: one row per quarantined raw record (stream + _airbyte_raw_id).
-- Nothing is dropped: for each stream, raw rows = staged rows + quarantined rows
-- (tests/reconcile_raw_staged_quarantined.sql checks it on every build).
{% set streams = ['users', 'products', 'purchases'] %}
{% for stream in streams %}
select
    '{{ stream }}' as stream,
    _airbyte_raw_id as raw_id,
    quarantine_reason as reason,
    _airbyte_extracted_at as extracted_at,
    {{ record_as_json('checked') }} as record
from {{ ref('validated_' ~ stream) }} as checked
where quarantine_reason is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}

-- Valid users, cleaned. Grain: one row per user.
select
    id as user_id,
    name,
    title,
    email,
    gender,
    age,
    cast(height as double) as height_m,
    weight as weight_kg,
    nationality,
    occupation,
    created_at,
    updated_at
from {{ ref('validated_users') }}
where quarantine_reason is null

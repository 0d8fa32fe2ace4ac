-- Valid products, cleaned. Grain: one row per product.
select
    id as product_id,
    make,
    model,
    year as model_year,
    cast(price as double) as price,
    created_at,
    updated_at
from {{ ref('validated_products') }}
where quarantine_reason is null

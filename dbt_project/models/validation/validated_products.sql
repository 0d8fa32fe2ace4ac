-- Every raw product, with the reason it cannot be trusted (NULL when it can).
-- Grain: one row per raw products row.
select
    products.*,
    case
        when products.id is null then 'null key: id'
        when products.price is null or products.price < 0 then 'out of range: price'
    end as quarantine_reason
from {{ source('airbyte', 'products') }} as products

-- Valid purchases, cleaned. Grain: one row per purchase (a cart entry; `purchased_at` NULL means
-- it never left the cart).
select
    id as purchase_id,
    user_id,
    product_id,
    added_to_cart_at,
    purchased_at,
    returned_at,
    purchased_at is not null as is_purchased,
    returned_at is not null as is_returned,
    created_at,
    updated_at
from {{ ref('validated_purchases') }}
where quarantine_reason is null

-- Every raw purchase, with the reason it cannot be trusted (NULL when it can).
-- Grain: one row per raw purchases row. A purchase of a quarantined user or product is
-- quarantined too: the marts never hold a purchase they cannot attribute.
with valid_users as (
    select id from {{ ref('validated_users') }} where quarantine_reason is null
),

valid_products as (
    select id from {{ ref('validated_products') }} where quarantine_reason is null
)

select
    purchases.*,
    case
        when purchases.id is null then 'null key: id'
        when purchases.user_id is null then 'null key: user_id'
        when purchases.product_id is null then 'null key: product_id'
        when valid_products.id is null then 'unknown product_id'
        when valid_users.id is null then 'unknown user_id'
        when purchases.returned_at < purchases.purchased_at then 'out of range: returned before purchased'
    end as quarantine_reason
from {{ source('airbyte', 'purchases') }} as purchases
left join valid_users on valid_users.id = purchases.user_id
left join valid_products on valid_products.id = purchases.product_id

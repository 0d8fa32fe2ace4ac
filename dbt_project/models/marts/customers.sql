-- Customers and what they bought. Grain: one row per valid user (users who never bought included).
with purchases as (
    select
        purchases.user_id,
        purchases.purchased_at,
        purchases.is_returned,
        products.price
    from {{ ref('stg_purchases') }} as purchases
    join {{ ref('stg_products') }} as products using (product_id)
    where purchases.is_purchased
),

per_user as (
    select
        user_id,
        count(*) as purchases,
        sum(case when is_returned then 1 else 0 end) as returns,
        sum(case when is_returned then 0 else price end) as lifetime_value,
        min(purchased_at) as first_purchase_at,
        max(purchased_at) as last_purchase_at
    from purchases
    group by user_id
)

select
    users.user_id,
    users.name,
    users.email,
    users.age,
    users.nationality,
    coalesce(per_user.purchases, 0) as purchases,
    coalesce(per_user.returns, 0) as returns,
    coalesce(per_user.lifetime_value, 0) as lifetime_value,
    per_user.first_purchase_at,
    per_user.last_purchase_at
from {{ ref('stg_users') }} as users
left join per_user using (user_id)

-- Revenue by day. Grain: one row per calendar day with at least one purchase.
-- Revenue counts purchases that were not returned, at the product's price.
select
    cast(purchases.purchased_at as date) as purchase_date,
    count(*) as purchases,
    sum(case when purchases.is_returned then 1 else 0 end) as returns,
    count(distinct purchases.user_id) as customers,
    sum(case when purchases.is_returned then 0 else products.price end) as revenue
from {{ ref('stg_purchases') }} as purchases
join {{ ref('stg_products') }} as products using (product_id)
where purchases.is_purchased
group by 1

-- How each product sells. Grain: one row per valid product (never-sold products included).
with sales as (
    select
        product_id,
        count(*) as purchases,
        sum(case when is_returned then 1 else 0 end) as returns
    from {{ ref('stg_purchases') }}
    where is_purchased
    group by product_id
)

select
    products.product_id,
    products.make,
    products.model,
    products.model_year,
    products.price,
    coalesce(sales.purchases, 0) as purchases,
    coalesce(sales.returns, 0) as returns,
    case when coalesce(sales.purchases, 0) = 0 then null
         else cast(sales.returns as double) / sales.purchases end as return_rate,
    (coalesce(sales.purchases, 0) - coalesce(sales.returns, 0)) * products.price as revenue
from {{ ref('stg_products') }} as products
left join sales using (product_id)

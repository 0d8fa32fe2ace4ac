-- Nothing is lost: for every stream, raw rows = staged rows + quarantined rows.
-- Returns the streams where that does not hold (a dbt test fails when it returns rows).
with counts as (
    select 'users' as stream,
           (select count(*) from {{ source('airbyte', 'users') }}) as raw_rows,
           (select count(*) from {{ ref('stg_users') }}) as staged_rows
    union all
    select 'products',
           (select count(*) from {{ source('airbyte', 'products') }}),
           (select count(*) from {{ ref('stg_products') }})
    union all
    select 'purchases',
           (select count(*) from {{ source('airbyte', 'purchases') }}),
           (select count(*) from {{ ref('stg_purchases') }})
),

quarantined as (
    select stream, count(*) as quarantined_rows
    from {{ ref('quarantined_records') }}
    group by stream
)

select counts.*, coalesce(quarantined.quarantined_rows, 0) as quarantined_rows
from counts
left join quarantined using (stream)
where counts.raw_rows <> counts.staged_rows + coalesce(quarantined.quarantined_rows, 0)

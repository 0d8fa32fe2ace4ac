-- Every raw user, with the reason it cannot be trusted (NULL when it can).
-- Grain: one row per raw users row. The first failing rule wins.
select
    users.*,
    case
        when users.id is null then 'null key: id'
        when users.age is null or users.age < 0 or users.age > 120 then 'out of range: age'
        when try_cast(users.height as double) is null then 'bad type: height is not a number'
    end as quarantine_reason
from {{ source('airbyte', 'users') }} as users

-- Typed, de-duplicated sales rows of the window being built. A re-delivered file replaces its
-- rows in raw, and the same (item, timestamp) can still arrive in two files: keep the latest load.
with ranked as (
    select
        *,
        row_number() over (
            partition by item_id, event_ts
            order by _loaded_at desc, _source_file desc
        ) as _rank
    from {{ source('raw', 'demand') }}
    where {{ in_window('event_ts') }}
)

select
    cast(item_id as {{ type_text() }})                       as item_id,
    cast(event_ts as timestamp)                              as event_ts,
    cast(event_ts as date)                                   as event_date,
    cast(list_price as {{ type_double() }})                  as list_price,
    cast(price as {{ type_double() }})                       as price,
    cast(discount_pct as {{ type_double() }})                as discount_pct,
    cast(on_promotion as integer)                            as on_promotion,
    cast(day_of_week as integer)                             as day_of_week,
    cast(temperature_c as {{ type_double() }})               as temperature_c,
    upper(trim(cast(store_id as {{ type_text() }})))         as store_id,
    lower(trim(cast(store_size as {{ type_text() }})))       as store_size,
    upper(trim(cast(product_id as {{ type_text() }})))       as product_id,
    lower(trim(cast(category as {{ type_text() }})))         as category,
    cast(units_sold as {{ type_double() }})                  as units_sold,
    _source_file
from ranked
where _rank = 1

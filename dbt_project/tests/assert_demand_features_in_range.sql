-- Rows returned here fail the test: values the demand data contract rules out. units_sold may
-- be empty (its label comes later) but never negative.
select *
from {{ ref('features_demand') }}
where {{ in_window('event_ts') }}
  and (price <= 0
   or list_price <= 0
   or discount_pct not between 0 and 100
   or on_promotion not in (0, 1)
   or day_of_week not between 0 and 6
   or units_sold < 0)

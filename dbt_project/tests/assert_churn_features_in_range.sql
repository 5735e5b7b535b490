-- Rows returned here fail the test: values a data contract rules out.
select *
from {{ ref('features_churn') }}
where {{ in_window('event_ts') }}
  and (tenure_months < 0
   or monthly_charges <= 0
   or satisfaction_score not between 1 and 5
   or discount_pct not between 0 and 100)

-- One row per labelled example, with the model's inputs. Ratios are computed here, in SQL,
-- so training and batch scoring read exactly the same definitions.
select
    customer_id,
    event_ts,
    event_date,
    tenure_months,
    monthly_charges,
    total_charges,
    num_support_calls,
    avg_session_minutes,
    days_since_last_login,
    num_logins_30d,
    data_usage_gb,
    discount_pct,
    age,
    late_payments_12m,
    satisfaction_score,
    total_charges / greatest(tenure_months, 1)          as charges_per_tenure_month,
    num_support_calls / greatest(num_logins_30d, 1)     as support_calls_per_login,
    plan_type,
    contract,
    region,
    payment_method,
    device,
    churned
from {{ ref('stg_churn') }}
where {{ in_window('event_ts') }}

-- Typed, de-duplicated snapshots. A file that is re-delivered replaces its rows in raw, and
-- the same (customer, timestamp) can still arrive in two files: keep the latest load.
-- Only the window of day partitions being materialized is read (see dbt_project.yml).
with ranked as (
    select
        *,
        row_number() over (
            partition by customer_id, event_ts
            order by _loaded_at desc, _source_file desc
        ) as _rank
    from {{ source('raw', 'churn') }}
    where {{ in_window('event_ts') }}
)

select
    cast(customer_id as {{ type_text() }})                 as customer_id,
    cast(event_ts as timestamp)                            as event_ts,
    cast(event_ts as date)                                 as event_date,
    cast(tenure_months as integer)                         as tenure_months,
    cast(monthly_charges as {{ type_double() }})           as monthly_charges,
    cast(total_charges as {{ type_double() }})             as total_charges,
    cast(num_support_calls as integer)                     as num_support_calls,
    cast(avg_session_minutes as {{ type_double() }})       as avg_session_minutes,
    cast(days_since_last_login as integer)                 as days_since_last_login,
    cast(num_logins_30d as integer)                        as num_logins_30d,
    cast(data_usage_gb as {{ type_double() }})             as data_usage_gb,
    cast(discount_pct as {{ type_double() }})              as discount_pct,
    cast(age as integer)                                   as age,
    cast(late_payments_12m as integer)                     as late_payments_12m,
    cast(satisfaction_score as {{ type_double() }})        as satisfaction_score,
    lower(trim(cast(plan_type as {{ type_text() }})))      as plan_type,
    lower(trim(cast(contract as {{ type_text() }})))       as contract,
    lower(trim(cast(region as {{ type_text() }})))         as region,
    lower(trim(cast(payment_method as {{ type_text() }}))) as payment_method,
    lower(trim(cast(device as {{ type_text() }})))         as device,
    cast(churned as integer)                               as churned,
    _source_file
from ranked
where _rank = 1

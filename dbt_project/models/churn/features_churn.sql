-- One row per snapshot, with the model's inputs. Ratios are computed here, in SQL, so
-- training and batch scoring read exactly the same definitions. The label is the label file's
-- (labels.churn, loaded when outcomes arrive) when there is one, else the landing file's target,
-- else empty: such rows are scored, and training reads only rows whose label is known.
{%- set labels_source = source('labels', 'churn') %}
{#- The labels table exists once a label file was loaded; before that, the target alone. #}
{%- set has_labels = execute and load_relation(labels_source) is not none %}
select
    s.customer_id,
    s.event_ts,
    s.event_date,
    s.tenure_months,
    s.monthly_charges,
    s.total_charges,
    s.num_support_calls,
    s.avg_session_minutes,
    s.days_since_last_login,
    s.num_logins_30d,
    s.data_usage_gb,
    s.discount_pct,
    s.age,
    s.late_payments_12m,
    s.satisfaction_score,
    {{ float_ratio('s.total_charges', 's.tenure_months') }}       as charges_per_tenure_month,
    {{ float_ratio('s.num_support_calls', 's.num_logins_30d') }}   as support_calls_per_login,
    s.plan_type,
    s.contract,
    s.region,
    s.payment_method,
    s.device,
{%- if has_labels %}
    cast(coalesce(l.churned, s.churned) as integer)     as churned
{%- else %}
    s.churned
{%- endif %}
from {{ ref('stg_churn') }} as s
{%- if has_labels %}
left join {{ labels_source }} as l
    on l.customer_id = s.customer_id
    and l.event_ts = s.event_ts
    and {{ in_window('l.event_ts') }}
{%- endif %}
where {{ in_window('s.event_ts') }}

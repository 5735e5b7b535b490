-- One row per item and day with the model's inputs, labelled or not. The target is the label
-- file's units sold (labels.demand, loaded a week later) when there is one, else the landing
-- file's, else empty: such rows are scored, and training reads only rows whose target is known.
{%- set labels_source = source('labels', 'demand') %}
{#- The labels table exists once a label file was loaded; before that, the target alone. #}
{%- set has_labels = execute and load_relation(labels_source) is not none %}
select
    s.item_id,
    s.event_ts,
    s.event_date,
    s.list_price,
    s.price,
    s.discount_pct,
    s.on_promotion,
    s.day_of_week,
    s.temperature_c,
    cast(s.price as {{ type_double() }}) / nullif(s.list_price, 0)   as price_ratio,
    s.store_id,
    s.store_size,
    s.product_id,
    s.category,
{%- if has_labels %}
    cast(coalesce(l.units_sold, s.units_sold) as {{ type_double() }}) as units_sold
{%- else %}
    s.units_sold
{%- endif %}
from {{ ref('stg_demand') }} as s
{%- if has_labels %}
left join {{ labels_source }} as l
    on l.item_id = s.item_id
    and l.event_ts = s.event_ts
    and {{ in_window('l.event_ts') }}
{%- endif %}
where {{ in_window('s.event_ts') }}

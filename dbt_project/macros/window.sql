{# Rows of the current [min_date, max_date) window, by a timestamp column. #}
{% macro in_window(ts_column) -%}
    {{ ts_column }} >= cast('{{ window_bound("min_date") }}' as timestamp)
    and {{ ts_column }} < cast('{{ window_bound("max_date") }}' as timestamp)
{%- endmacro %}

{# Before an incremental run inserts its window, delete what the table holds for it. #}
{% macro delete_window(date_column) -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where {{ date_column }} >= cast('{{ window_bound("min_date") }}' as date)
          and {{ date_column }} < cast('{{ window_bound("max_date") }}' as date)
    {% endif %}
{%- endmacro %}

{# dbt's hook for a test's `where` config; expands the "__day_window__" marker into the window. #}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where == '__day_window__' -%}
        {%- set where = "event_date >= cast('" ~ window_bound('min_date') ~ "' as date) and event_date < cast('" ~ window_bound('max_date') ~ "' as date)" -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- A bound of the day window being built ('min_date' or 'max_date'). Dagster passes the window
    in MLOPS_DBT_MIN_DATE / MLOPS_DBT_MAX_DATE, read only when executing, so the window is no part
    of what dbt parses: a `--vars` that changes with every day would make every `dbt build` parse
    the whole project again (dbt drops its partial parsing state when the command-line vars
    change). Without the variables (dbt run by hand, or `--vars`), the vars. -#}
{% macro window_bound(name) -%}
    {%- set from_env = env_var('MLOPS_DBT_' ~ (name | upper), '') if execute else '' -%}
    {{- return(from_env if from_env else var(name)) -}}
{%- endmacro %}

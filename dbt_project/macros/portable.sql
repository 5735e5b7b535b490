{#- The one place for SQL that differs between warehouses (DuckDB, PostgreSQL, Databricks,
    Spark): models call these macros, which dispatch on the adapter. dbt-databricks falls back
    to the spark__ implementations. -#}

{#- A 64-bit float: `double` is DuckDB and Spark only, PostgreSQL spells it `double precision`. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'mlops_assets')()) }}
{%- endmacro %}
{% macro default__type_double() -%}double precision{%- endmacro %}
{% macro spark__type_double() -%}double{%- endmacro %}

{#- Text of any length: Spark's `varchar` needs a length, its `string` has none. -#}
{% macro type_text() -%}
    {{ return(adapter.dispatch('type_text', 'mlops_assets')()) }}
{%- endmacro %}
{% macro default__type_text() -%}varchar{%- endmacro %}
{% macro spark__type_text() -%}string{%- endmacro %}

{#- numerator / greatest(denominator, 1) as a float: PostgreSQL truncates integer division, DuckDB
    and Spark do not, so the numerator is made a float first. -#}
{% macro float_ratio(numerator, denominator) -%}
    cast({{ numerator }} as {{ type_double() }}) / greatest({{ denominator }}, 1)
{%- endmacro %}

"""docs/use-case-fields.md is generated from the use-case schema and must match it."""
from pathlib import Path

from mlops_assets.use_cases.fields import REGENERATE, fields_page

DOC = Path(__file__).resolve().parent.parent / "docs" / "use-case-fields.md"


def test_the_field_table_matches_the_schema():
    assert DOC.read_text(encoding="utf-8") == fields_page(), f"docs/use-case-fields.md is stale; run `{REGENERATE}`"


def test_the_page_says_it_is_generated_and_how():
    first = fields_page().splitlines()[0]
    assert "Generated" in first and REGENERATE in first
    assert "| `thresholds.min_roc_auc` | number | `0.6` |" in fields_page()
    assert "| `labels.folder` | string | **required** |" in fields_page()  # an optional section's fields too

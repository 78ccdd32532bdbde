"""pandas views of the responses, for analysts: one tidy frame per document, and a side-by-side.

pandas is an optional extra (``pip install 'pinsights[pandas]'``): the client and the server never
import it, and these functions import it only when called, failing with an instruction if it is
missing.

The client answers with the response models defined here: the wire models of
:mod:`pinsights.contract` plus ``to_dataframe()``. The views live with the client, not in the
contract, because the contract is shared with the server and imports nothing of ours.

An insights document becomes one *long* frame — a row per category, subcategory and demographic
value — because that is what filters, groups, plots and concatenates well: ``frame[frame.dimension ==
"ages"]``, or ``pd.concat`` over several accounts or dates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pinsights import contract
from pinsights.contract import insight_type_of_definition

if TYPE_CHECKING:
    import pandas

#: The ``dimension`` values of an insights frame, in the order rows appear.
DIMENSIONS = ("categories", "subcategories", "ages", "genders", "countries", "metros", "devices")
DEMOGRAPHIC_DIMENSIONS = DIMENSIONS[2:]
INSIGHT_COLUMNS = ("type", "date", "dimension", "parent_key", "key", "name", "ratio", "index")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            "to_dataframe() and compare() need pandas: pip install 'pinsights[pandas]'"
        ) from exc
    return pandas


def insights_frame(response: contract.AudienceInsightsResponse) -> pandas.DataFrame:
    """One row per category, subcategory and demographic value of an insights document.

    Columns: ``type``, ``date``, ``dimension`` (one of :data:`DIMENSIONS`), ``parent_key`` (the
    category of a subcategory, else missing), ``key``, ``name``, ``ratio``, ``index`` (missing for
    demographics, which have none). A subcategory's ratio is its share *of its category* (SPEC §3).
    """
    pd = _pandas()
    kind = response.type.value if response.type is not None else None
    rows: list[tuple[object, ...]] = []
    for category in response.categories or []:
        rows.append(
            (
                kind,
                response.date,
                "categories",
                None,
                category.key,
                category.name,
                category.ratio,
                category.index,
            )
        )
    for category in response.categories or []:
        for sub in category.subcategories or []:
            rows.append(
                (
                    kind,
                    response.date,
                    "subcategories",
                    category.key,
                    sub.key,
                    sub.name,
                    sub.ratio,
                    sub.index,
                )
            )
    demographics = response.demographics
    for dimension in DEMOGRAPHIC_DIMENSIONS:
        values = getattr(demographics, dimension, None) if demographics is not None else None
        for value in values or []:
            rows.append(
                (kind, response.date, dimension, None, value.key, value.name, value.ratio, None)
            )
    frame = pd.DataFrame(rows, columns=list(INSIGHT_COLUMNS))
    return frame.astype({"ratio": "float64", "index": "float64"})


def definitions_frame(response: contract.AudienceDefinitionResponse) -> pandas.DataFrame:
    """One row per audience definition: ``date``, ``scope``, ``type`` and the ``audience_insight_type``
    to pass to ``audience_insights_get`` for it (missing for a pair the SPEC does not map)."""
    pd = _pandas()
    rows = []
    for item in response.items or []:
        kind = insight_type_of_definition(item.scope, item.type)
        rows.append((item.date, item.scope, item.type, kind.value if kind else None))
    return pd.DataFrame(rows, columns=["date", "scope", "type", "audience_insight_type"])


def category_list_frame(
    response: contract.AudienceInsightCategoryArrayResponse,
) -> pandas.DataFrame:
    """One row per item of the deprecated category listing: ``id``, ``key``, ``name``, ``ratio``,
    ``index``."""
    pd = _pandas()
    rows = [(i.id, i.key, i.name, i.ratio, i.index) for i in response.items or []]
    frame = pd.DataFrame(rows, columns=["id", "key", "name", "ratio", "index"])
    return frame.astype({"ratio": "float64", "index": "float64"})


def _labels(
    a: contract.AudienceInsightsResponse,
    b: contract.AudienceInsightsResponse,
    labels: tuple[str, str] | None,
) -> tuple[str, str]:
    if labels is not None:
        if len(labels) != 2 or labels[0] == labels[1]:
            raise ValueError("labels must be two different names")
        return labels
    if a.type != b.type and a.type is not None and b.type is not None:
        return a.type.value.lower(), b.type.value.lower()
    if a.date != b.date and a.date and b.date:
        return a.date, b.date
    return "a", "b"


def compare(
    a: contract.AudienceInsightsResponse,
    b: contract.AudienceInsightsResponse,
    *,
    labels: tuple[str, str] | None = None,
) -> pandas.DataFrame:
    """Two audiences side by side: every category, subcategory and demographic value of either.

    Typical use: ``compare(engaged, pinterest_total)`` — what sets the people who engage with you
    apart from everyone on the platform. Columns: ``dimension``, ``parent_key``, ``key``, ``name``,
    then ``ratio_<a>``, ``ratio_<b>``, ``index_<a>``, ``index_<b>``, and
    ``ratio_diff`` (a - b, in share points) and ``ratio_lift`` (a ÷ b). A value one audience does not
    report (left out by the privacy thresholds) is missing on that side, not zero.

    ``labels`` name the two sides; by default the lower-cased insight types (``your_engaged_audience``),
    else the dates when both are the same type, else ``a`` and ``b``.
    """
    label_a, label_b = _labels(a, b, labels)
    keys = ["dimension", "parent_key", "key"]
    left = insights_frame(a).drop(columns=["type", "date"])
    right = insights_frame(b).drop(columns=["type", "date"])
    merged = left.merge(
        right, on=keys, how="outer", suffixes=(f"_{label_a}", f"_{label_b}"), sort=False
    )
    merged["name"] = merged.pop(f"name_{label_a}").fillna(merged.pop(f"name_{label_b}"))
    ratio_a, ratio_b = merged[f"ratio_{label_a}"], merged[f"ratio_{label_b}"]
    merged["ratio_diff"] = ratio_a - ratio_b
    merged["ratio_lift"] = ratio_a / ratio_b.where(ratio_b != 0)
    merged["_order"] = merged["dimension"].map({d: i for i, d in enumerate(DIMENSIONS)})
    by_ratio = ["_order", f"ratio_{label_a}", f"ratio_{label_b}", "key"]
    descending = [True, False, False, True]
    merged = merged.sort_values(by_ratio, ascending=descending, na_position="last")
    # Subcategories follow their category's rank, so each one's children read as a block.
    category_rank = {
        key: rank for rank, key in enumerate(merged.loc[merged["dimension"] == "categories", "key"])
    }
    merged["_parent"] = merged["parent_key"].map(category_rank).fillna(-1)
    merged = merged.sort_values(
        ["_order", "_parent", *by_ratio[1:]],
        ascending=[True, True, *descending[1:]],
        na_position="last",
    )
    columns = [
        *keys,
        "name",
        f"ratio_{label_a}",
        f"ratio_{label_b}",
        f"index_{label_a}",
        f"index_{label_b}",
        "ratio_diff",
        "ratio_lift",
    ]
    return merged[columns].reset_index(drop=True)


class AudienceInsightsResponse(contract.AudienceInsightsResponse):
    """An insights document (:class:`pinsights.contract.AudienceInsightsResponse`) with its frame."""

    def to_dataframe(self) -> pandas.DataFrame:
        """A long frame, one row per category, subcategory and demographic value (needs pandas)."""
        return insights_frame(self)


class AudienceDefinitionResponse(contract.AudienceDefinitionResponse):
    """The audiences of an account with insights (the contract's model), with its frame."""

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per definition, with the insight type it stands for (needs pandas)."""
        return definitions_frame(self)


class AudienceInsightCategoryArrayResponse(contract.AudienceInsightCategoryArrayResponse):
    """The deprecated category listing (the contract's model), with its frame."""

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per subcategory of the deprecated category listing (needs pandas)."""
        return category_list_frame(self)

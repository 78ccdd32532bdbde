"""The privacy rules of SPEC §3, in one place.

Audience data is about people. These thresholds decide what an advertiser may learn:

- an audience smaller than ``min_audience_size`` is answered with an upper bound and nothing else,
  the same answer as an account with no audience at all (no existence oracle);
- a category, subcategory or demographic value counted for fewer than ``min_cell_size`` people is
  left out of every document.

Changing a rule means changing this file (and the SPEC), nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis.expr.types as ir


@dataclass(frozen=True)
class PrivacyRules:
    min_audience_size: int = 100
    min_cell_size: int = 10
    max_subcategories: int = 10
    max_countries: int = 50
    max_metros: int = 50

    def __post_init__(self) -> None:
        if self.min_audience_size < 1 or self.min_cell_size < 1:
            raise ValueError("min_audience_size and min_cell_size must be at least 1")
        if self.max_subcategories < 0:
            raise ValueError("max_subcategories must not be negative")

    def audience_is_reportable(self, size: int) -> bool:
        return size >= self.min_audience_size

    def suppress_small_cells(self, counts: ir.Table) -> ir.Table:
        """Drop every counted cell (``users`` column) below ``min_cell_size``, before it leaves SQL."""
        return counts.filter(counts.users >= self.min_cell_size)

    def placeholder(self, insight_type: str, date: str) -> dict[str, object]:
        """The answer for an audience too small to describe, or absent."""
        return {
            "type": insight_type,
            "date": date,
            "size": self.min_audience_size,
            "size_is_upper_bound": True,
            "categories": [],
            "demographics": {
                "ages": [],
                "genders": [],
                "countries": [],
                "metros": [],
                "devices": [],
            },
        }

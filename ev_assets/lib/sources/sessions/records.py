"""What every session parser gives and shares: `Parsed`, quarantine rows (`tables.quarantine_row`), and the JSON
value helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ev_assets.lib.tables import quarantine_row

__all__ = ["Parsed", "RowError", "quarantine_row"]


@dataclass
class Parsed:
    table: pd.DataFrame  # the columns of TABLES[source], in order
    quarantine: pd.DataFrame  # the columns of TABLES["quarantine"]




class RowError(ValueError):
    """One record cannot be loaded; the message is the quarantine reason."""


# Not `lib.values.text` / `number`: session text is stripped (blank is None), and a value that is not a number is a
# row error (a blank string too, while NaN and inf load), where `values.number` gives None and the reason.
def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _required_text(item: dict, key: str) -> str:
    value = _text(item.get(key))
    if value is None:
        raise RowError(f"missing {key}")
    return value


def _number(value: Any, what: str) -> float | None:
    """A JSON number (or numeric string) as float; None stays None; anything else is a row error."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RowError(f"{what} is not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RowError(f"{what} is not a number: {value!r}") from None

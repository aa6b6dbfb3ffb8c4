"""Typed readers of the environment's values for `Settings.from_env` (`get` is its lookup): each names the variable
in its error."""

from __future__ import annotations

from datetime import date
from pathlib import Path


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def choice(get, name: str, choices: tuple[str, ...], default: str) -> str:
    value = (get(name) or default).lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def url(get, name: str) -> str | None:
    """A local path (made absolute) or a URL with a scheme such as s3:// or file://."""
    raw = get(name)
    if raw is None or "://" in raw:
        return raw
    return str(Path(raw).expanduser().resolve())


def csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in value.split(",") if v.strip()) if value else ()


def integer(get, name: str, default: int, minimum: int | None = None) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name}={value} must be at least {minimum}")
    return value


def number(get, name: str, default: float) -> float:
    raw = get(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


def day(get, name: str, default: date) -> date:
    raw = get(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a date like 2022-01-10") from None


def osm_tags(raw: str | None) -> dict[str, list[str] | bool] | None:
    """`EV_OSM_TAGS="amenity=cafe|fuel,shop=supermarket,tourism"`: key=value|value, or a bare key for any value."""
    if not raw:
        return None
    tags: dict[str, list[str] | bool] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        key, _, values = part.partition("=")
        tags[key.strip()] = [v.strip() for v in values.split("|") if v.strip()] if values else True
    return tags

"""What every router of the service answers with besides its own bodies: the error body (`{"detail": ...}`) as
the OpenAPI docs show it, and the header that says how old the data of an answer is."""

from __future__ import annotations

from pydantic import BaseModel, Field

DATA_AS_OF_HEADER = "X-Data-As-Of"  # on every KPI, prediction and live answer: the newest time of the data it used


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, and what to do about it.")


def error_response(description: str) -> dict:
    """An entry of a route's `responses`: the error body with what the status means on that route."""
    return {"model": ErrorBody, "description": description}

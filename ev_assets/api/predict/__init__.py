"""`POST /predict/...`: the forecasts of the champions, each answer logged to the prediction log before it is sent.

Every response carries `request_id` (also in the `X-Request-ID` header) and the registered model name and version
that answered; the prediction log holds one record per model answer with the same request id (two for the
endpoints that ask two models: utilization and session).

`schemas` holds the request and response bodies (with the time patterns the OpenAPI schema carries) and the error
answers; `routes` the endpoints (`router`).
"""

from ev_assets.api.predict.routes import router

__all__ = ["router"]

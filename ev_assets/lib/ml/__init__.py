"""Plain ML code (no Dagster): features, training, evaluation against baselines, the MLflow registry and the
champion gate, ONNX export. Each model module returns a `core.TrainedModel`; `ev_assets.defs.ml` turns them into
assets."""

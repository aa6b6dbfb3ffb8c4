"""Session energy (kWh) and duration (h) forecast at plug-in time, on the Norwegian residential session reports
(Sørensen et al. 2021) and Caltech ACN-Data sessions.

Design: one LightGBM model per target trained on both datasets together, with a `dataset` feature (0 Norway, 1
ACN), so one registered model serves both sources. The two datasets lie in different years (2018-2020 vs 2021),
so a single time split over their union would put all of Norway in training and all of ACN in the test. Each
dataset is therefore split by time on its own (`core.time_split` on the plug-in instant); the training, validation
and test blocks are the unions of the per-dataset blocks, and every figure is reported for the pooled test set and
per dataset (`mae_norway`, `smape_acn`, ... in the Evaluation's dicts, and in the description).

- `data`: the two raw tables as usable sessions in one shape (`usable_sessions`), and what was dropped;
- `features`: what is known at plug-in time (`session_features`: the user's history, the calendar, the codes);
- `training`: the models, their split and baselines (`train_session_models`).
"""

from ev_assets.lib.ml.sessions.data import Sessions, usable_sessions
from ev_assets.lib.ml.sessions.features import session_features
from ev_assets.lib.ml.sessions.training import train_session_models

__all__ = ["Sessions", "session_features", "train_session_models", "usable_sessions"]

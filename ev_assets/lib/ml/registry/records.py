"""What the registry writes and returns: a registered version, the champion gate's decision for it, and the rules
that make names and values fit MLflow (keys, tags, params), with the hash of the held-out rows."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from ev_assets.lib.ml import gate as gate_rules

EXPERIMENT_PREFIX = "ev-assets/"
GATE_TAG_PREFIX = gate_rules.PREFIX  # "champion_gate."
ENCODINGS = "encodings.json"  # the codes a version was trained with, beside its model

_MAX_PARAM_VALUE = 6000  # MLflow's limit for a param value
_MAX_TAG_VALUE = 5000  # below MLflow's limits for run tags (8000) and version tags


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    run_id: str
    experiment_id: str
    run_url: str
    version_url: str


@dataclass(frozen=True)
class Decision:
    """The outcome for one registered version: whether it holds the `champion` alias now, and why."""

    name: str
    version: str
    promoted: bool  # whether this version holds the `champion` alias after the decision
    reason: str
    gate: gate_rules.GateResult | None = None  # the figures behind it (None: not judged, e.g. already champion)

    @property
    def champion_version(self) -> str | None:
        return self.gate.champion_version if self.gate else None

    @property
    def beats_baselines(self) -> bool | None:
        return self.gate.beats_baselines if self.gate else None

    @property
    def metric(self) -> str | None:
        return self.gate.metric if self.gate else None

    @property
    def challenger_score(self) -> float | None:
        found = self.gate and (self.gate.baseline or self.gate.champion)
        return found.candidate if found else None

    @property
    def champion_score(self) -> float | None:
        return self.gate.champion.rival_score if self.gate and self.gate.champion else None

    def tags(self) -> dict[str, str]:
        """The decision as MLflow tags (written to the version and to its run)."""
        return {**(self.gate.tags() if self.gate else {}),
                f"{GATE_TAG_PREFIX}decision": "promoted" if self.promoted else "not promoted",
                f"{GATE_TAG_PREFIX}reason": self.reason[:_MAX_TAG_VALUE],
                f"{GATE_TAG_PREFIX}decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def sanitize_key(name: str) -> str:
    """A metric / param name MLflow accepts on every platform: lower-case letters, digits, `_`, `.`, `-`, `/`."""
    key = re.sub(r"[^a-z0-9_.\-/]+", "_", str(name).strip().lower()).strip("_")
    return key[:250] or "_"


def heldout_hash(X: pd.DataFrame, y: pd.Series) -> str:
    """SHA-256 of the held-out rows (column names, feature values, target), independent of the index."""
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in X.columns]).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(pd.Series(np.asarray(y)), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _tag_key(key) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]+", "_", str(key)).strip()[:250] or "_"


def _tag_value(value) -> str:
    return str(value)[:_MAX_TAG_VALUE]


def _card_summary(card: str) -> str:
    """A model card's first paragraph after its title (`TrainedModel.model_card`): what the model predicts and its
    held-out figures."""
    return next((p.strip() for p in card.split("\n\n") if p.strip() and not p.lstrip().startswith("#")), "")


def _model_description(summary: str, version: str | int, champion: bool = False) -> str:
    """The registered model's description: a version's summary, saying whose figures they are."""
    whose = f"version {version}, the champion" if champion else f"version {version}, until a champion is promoted"
    return f"{summary}\n\n(Figures of {whose}.)"


def _param_value(value) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text[:_MAX_PARAM_VALUE]

"""Out-of-sample scores of the model against naive baselines.

- prior:       always the training base rate (the best constant probability); accuracy = majority class.
- persistence: predict "up" when the last H-bar return was up (momentum); its AUC uses the return.
A model "has an edge" only when all three hold on the pooled out-of-sample rows: AUC >= 0.52,
log loss below the prior's, accuracy above the best baseline's. On a random walk a trained model
overfits noise: its log loss is worse than the prior's and the report says hasEdge = false.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

MIN_AUC = 0.52


def _auc(y, s) -> float:
    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else 0.5


def score(y, p, prior, persistence) -> dict:
    y = np.asarray(y, dtype=float)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    prior = np.clip(np.asarray(prior, dtype=float), 1e-7, 1 - 1e-7)
    persist_up = (np.asarray(persistence) > 0).astype(float)
    model = {
        "auc": _auc(y, p),
        "accuracy": float(((p > 0.5) == (y > 0.5)).mean()),
        "logLoss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(np.mean((p - y) ** 2)),
    }
    base = {
        "accuracy": float(((prior > 0.5) == (y > 0.5)).mean()),
        "logLoss": float(log_loss(y, prior, labels=[0, 1])),
    }
    persist = {"accuracy": float((persist_up == y).mean()), "auc": _auc(y, persistence)}
    return {
        "rows": int(len(y)),
        "baseRate": float(y.mean()),
        "model": model,
        "prior": base,
        "persistence": persist,
        "accuracyGain": model["accuracy"] - max(base["accuracy"], persist["accuracy"]),
        "logLossGain": base["logLoss"] - model["logLoss"],
    }


def has_edge(s: dict) -> bool:
    return bool(s["model"]["auc"] >= MIN_AUC and s["logLossGain"] > 0 and s["accuracyGain"] > 0)

"""Training job: bars CSV in, LightGBM model out as ONNX plus a JSON report.

    python -m trading_ml.train --bars bars.csv --out DIR [--horizon 1] [--folds 4] [--seed 7]

bars.csv columns: symbol,open_time,open,high,low,close,volume (open_time in epoch ms). Symbols are
pooled (every feature is scale-free). The label is "close H bars later is higher". Walk-forward
validation: the time range is cut into folds+1 chunks; fold i trains on chunks < i (an embargo drops
training rows whose label reaches into the test chunk) and tests on chunk i. The pooled
out-of-sample predictions are scored against two naive baselines: the training base rate (always
the same probability) and persistence (the sign of the last H-bar return). The final model is fitted
on every row and exported with onnxmltools (zipmap off, symbolic batch dimension).
Writes DIR/model.onnx and DIR/report.json; prints the report on stdout.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict

import numpy as np

from .features import FEATURES, LOOKBACK, feature_matrix, forward_up
from .metrics import score, has_edge

PARAMS = dict(
    n_estimators=200,
    learning_rate=0.05,
    num_leaves=15,
    min_child_samples=100,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.8,
    reg_lambda=1.0,
    n_jobs=1,  # 2 shared cores: OpenMP busy-waiting makes n_jobs=2 ~10x slower here
    deterministic=True,
    force_row_wise=True,
    verbose=-1,
)


def read_bars(path: str):
    rows = defaultdict(list)
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            rows[rec["symbol"]].append(
                (int(rec["open_time"]), float(rec["open"]), float(rec["high"]), float(rec["low"]), float(rec["close"]), float(rec["volume"]))
            )
    return {s: np.array(sorted(v), dtype=float) for s, v in rows.items()}


def dataset(bars_by_symbol, horizon: int):
    """Pooled rows with complete features and labels: X, y, open_time, persistence score."""
    xs, ys, ts, ps = [], [], [], []
    for arr in bars_by_symbol.values():
        t, h, l, c, v = arr[:, 0], arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5]
        X = feature_matrix(h, l, c, v)
        y = forward_up(c, horizon)
        past = np.full(len(c), np.nan)
        past[horizon:] = np.log(c[horizon:] / c[:-horizon])
        ok = ~np.isnan(X).any(axis=1) & ~np.isnan(y)
        xs.append(X[ok]); ys.append(y[ok]); ts.append(t[ok]); ps.append(past[ok])
    if not xs or sum(len(y) for y in ys) == 0:
        raise SystemExit(f"no complete rows: every symbol needs more than {LOOKBACK + horizon} bars")
    X, y, t, p = (np.concatenate(a) for a in (xs, ys, ts, ps))
    order = np.argsort(t, kind="stable")
    return X[order], y[order], t[order], p[order]


def model(seed: int):
    import lightgbm as lgb

    return lgb.LGBMClassifier(random_state=seed, **PARAMS)


def walk_forward(X, y, t, persistence, horizon: int, folds: int, interval_ms: float, seed: int):
    bounds = np.quantile(t, np.linspace(0, 1, folds + 2))
    oos_p, oos_y, oos_persist, oos_prior, per_fold = [], [], [], [], []
    for i in range(1, folds + 1):
        test = (t >= bounds[i]) & ((t < bounds[i + 1]) if i < folds else (t <= bounds[i + 1]))
        train = t + horizon * interval_ms < bounds[i]  # embargo: no label overlaps the test chunk
        if train.sum() < 200 or test.sum() < 50 or len(np.unique(y[train])) < 2:
            continue
        m = model(seed).fit(X[train], y[train])
        p = m.predict_proba(X[test])[:, 1]
        prior = np.full(test.sum(), y[train].mean())
        fold = score(y[test], p, prior, persistence[test])
        fold.update(fold=i, trainRows=int(train.sum()), testFrom=int(bounds[i]), testTo=int(bounds[i + 1]))
        per_fold.append(fold)
        oos_p.append(p); oos_y.append(y[test]); oos_persist.append(persistence[test]); oos_prior.append(prior)
    if not per_fold:
        raise SystemExit("not enough rows for walk-forward validation (need >= 200 training rows per fold)")
    pooled = score(*(np.concatenate(a) for a in (oos_y, oos_p, oos_prior, oos_persist)))
    return pooled, per_fold, np.concatenate(oos_p)


def export_onnx(m, n_features: int, path: str):
    import onnx
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    proto = convert_lightgbm(m, initial_types=[("features", FloatTensorType([None, n_features]))], zipmap=False, target_opset=15)
    # onnxmltools declares `label` with a fixed batch of 1: make every output's first dim symbolic.
    for out in proto.graph.output:
        dims = out.type.tensor_type.shape.dim
        if len(dims) > 0:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "N"
    onnx.checker.check_model(proto)
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    if a.horizon < 1 or a.folds < 1:
        raise SystemExit("--horizon and --folds must be >= 1")
    started = time.perf_counter()
    bars = read_bars(a.bars)
    n_bars = int(sum(len(v) for v in bars.values()))
    steps = np.concatenate([np.diff(v[:, 0]) for v in bars.values() if len(v) > 1] or [np.array([60_000.0])])
    interval_ms = float(np.median(steps))
    X, y, t, persistence = dataset(bars, a.horizon)
    pooled, per_fold, oos_p = walk_forward(X, y, t, persistence, a.horizon, a.folds, interval_ms, a.seed)
    validated = time.perf_counter()
    final = model(a.seed).fit(X, y)
    fitted = time.perf_counter()
    os.makedirs(a.out, exist_ok=True)
    onnx_path = os.path.join(a.out, "model.onnx")
    export_onnx(final, len(FEATURES), onnx_path)

    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    sample = X[-min(len(X), 1000):].astype(np.float32)
    onnx_p = sess.run(["probabilities"], {"features": sample})[0][:, 1]
    agreement = float(np.max(np.abs(onnx_p - final.predict_proba(sample)[:, 1])))
    edges = np.linspace(0, 1, 11)
    report = {
        "features": FEATURES,
        "lookback": LOOKBACK,
        "horizon": a.horizon,
        "intervalMs": interval_ms,
        "symbols": sorted(bars),
        "bars": n_bars,
        "rows": int(len(y)),
        "trainingWindow": {"from": int(t.min()), "to": int(t.max())},
        "params": {k: v for k, v in PARAMS.items() if k != "verbose"} | {"seed": a.seed, "folds": a.folds},
        "metrics": {"outOfSample": pooled, "folds": per_fold, "hasEdge": has_edge(pooled)},
        "reference": {
            "predictionBins": edges.tolist(),
            "predictionFractions": (np.histogram(oos_p, bins=edges)[0] / len(oos_p)).tolist(),
            "features": {n: {"mean": float(X[:, j].mean()), "std": float(X[:, j].std())} for j, n in enumerate(FEATURES)},
        },
        "onnx": {"input": "features", "output": "probabilities", "positiveClass": 1, "maxAbsDiffVsLightgbm": agreement},
        "timing": {
            "validationSeconds": round(validated - started, 3),
            "fitSeconds": round(fitted - validated, 3),
            "totalSeconds": round(time.perf_counter() - started, 3),
        },
    }
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

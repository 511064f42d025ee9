"""Features from OHLCV bars, computed exactly as services/src/ml/features.ts computes them.

Both sides implement the same definitions (ml/README.md, "Features"); tests/ml/features-parity.test.ts
runs both on the same bars and compares every value. The value at bar t uses bars <= t only.
With r_i = ln(c_i / c_{i-1}):
  ret_k          ln(c_t / c_{t-k})                          k = 1, 5, 15, 60
  vol_k          population std of r over the last k bars    k = 15, 60
  rsi_14         100 * G / (G + L), G/L = sums of up/down close changes over 14 bars (50 if flat)
  volume_z_20    (v_t - mean) / population std of the last 20 volumes (0 if constant)
  range_15       mean of (h - l) / c over the last 15 bars
  channel_pos_20 (c_t - min low) / (max high - min low) over 20 bars (0.5 if no range)
  ma_gap_20      c_t / mean(close of 20 bars) - 1
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as windows

FEATURES = [
    "ret_1",
    "ret_5",
    "ret_15",
    "ret_60",
    "vol_15",
    "vol_60",
    "rsi_14",
    "volume_z_20",
    "range_15",
    "channel_pos_20",
    "ma_gap_20",
]
# Bars needed before the first complete feature row: ret_60 and vol_60 look 60 bars back.
LOOKBACK = 60


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    """Right-align a window statistic (one value per complete window) with the n bars; NaN before."""
    out = np.full(n, np.nan)
    out[n - len(values):] = values
    return out


def feature_matrix(high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """(n, len(FEATURES)) float64; rows before LOOKBACK are NaN."""
    n = len(close)
    out = np.full((n, len(FEATURES)), np.nan)
    if n <= LOOKBACK:
        return out
    logc = np.log(close)
    r = np.full(n, np.nan)
    r[1:] = np.diff(logc)
    cols = {}
    for k in (1, 5, 15, 60):
        v = np.full(n, np.nan)
        v[k:] = logc[k:] - logc[:-k]
        cols[f"ret_{k}"] = v
    for k in (15, 60):
        cols[f"vol_{k}"] = _pad(windows(r[1:], k).std(axis=1), n)
    d = np.diff(close)
    up = windows(np.maximum(d, 0.0), 14).sum(axis=1)
    down = windows(np.maximum(-d, 0.0), 14).sum(axis=1)
    total = up + down
    rsi = np.where(total > 0, 100.0 * up / np.where(total > 0, total, 1.0), 50.0)
    cols["rsi_14"] = _pad(rsi, n)
    vw = windows(volume, 20)
    vm, vs = vw.mean(axis=1), vw.std(axis=1)
    cols["volume_z_20"] = _pad(np.where(vs > 0, (volume[19:] - vm) / np.where(vs > 0, vs, 1.0), 0.0), n)
    cols["range_15"] = _pad(windows((high - low) / close, 15).mean(axis=1), n)
    lo, hi = windows(low, 20).min(axis=1), windows(high, 20).max(axis=1)
    span = hi - lo
    cols["channel_pos_20"] = _pad(np.where(span > 0, (close[19:] - lo) / np.where(span > 0, span, 1.0), 0.5), n)
    cols["ma_gap_20"] = _pad(close[19:] / windows(close, 20).mean(axis=1) - 1.0, n)
    for j, name in enumerate(FEATURES):
        out[:, j] = cols[name]
    out[:LOOKBACK, :] = np.nan
    return out


def forward_up(close: np.ndarray, horizon: int) -> np.ndarray:
    """Label: 1.0 when ln(c_{t+h} / c_t) > 0, else 0.0; NaN for the last `horizon` bars."""
    y = np.full(len(close), np.nan)
    if len(close) > horizon:
        y[:-horizon] = (close[horizon:] > close[:-horizon]).astype(float)
    return y

"""Prints the feature rows of a bars CSV as JSON lines {symbol, openTime, values} (NaN rows skipped).

    python -m trading_ml.dump_features --bars bars.csv

Used by tests/ml/features-parity.test.ts to compare the Python features with the TypeScript ones.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .features import FEATURES, feature_matrix
from .train import read_bars


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", required=True)
    a = ap.parse_args(argv)
    for symbol, arr in sorted(read_bars(a.bars).items()):
        X = feature_matrix(arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5])
        for i in range(len(arr)):
            if not np.isnan(X[i]).any():
                sys.stdout.write(json.dumps({"symbol": symbol, "openTime": int(arr[i, 0]), "values": dict(zip(FEATURES, X[i].tolist()))}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Anchor engines for bench/backtest.ts: the same SMA(fast)/SMA(slow) long-only crossover on the same
bars (a float64 file of 6 x symbols x bars: time_ms, open, high, low, close, volume, written by the
TypeScript side). Prints one JSON line: engine, bars, symbols, wall and CPU seconds of the run
(data already loaded in the engine's own format; numba compile excluded for vectorbt by a warm-up
run), trades.

usage: anchors.py <engine> <bars.f64> <symbols> <bars_per_symbol> <fast> <slow>
engines: backtrader | backtesting | vectorbt | nautilus
"""
import json
import sys
import time

import numpy as np


def load(path, symbols, n):
    return np.fromfile(path, dtype="<f8").reshape(6, symbols, n)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def frame(cols, s):
    import pandas as pd
    idx = pd.to_datetime(cols[0, s].astype("int64"), unit="ms", utc=True)
    return pd.DataFrame({"Open": cols[1, s], "High": cols[2, s], "Low": cols[3, s], "Close": cols[4, s], "Volume": cols[5, s]}, index=idx)


def run_backtrader(cols, fast, slow):
    import backtrader as bt

    class Cross(bt.Strategy):
        def __init__(self):
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=fast), bt.ind.SMA(period=slow))

        def next(self):
            if not self.position and self.cross[0] > 0:
                self.buy(size=1)
            elif self.position and self.cross[0] < 0:
                self.close()

    trades = 0
    total = (0.0, 0.0)
    for s in range(cols.shape[1]):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=frame(cols, s)))
        cerebro.broker.setcash(1e12)
        cerebro.addstrategy(Cross)
        cerebro.addanalyzer(bt.analyzers.TradeAnalyzer)
        res, w, c = timed(lambda: cerebro.run(runonce=True))
        trades += res[0].analyzers.tradeanalyzer.get_analysis().get("total", {}).get("closed", 0)
        total = (total[0] + w, total[1] + c)
    return trades, total


def run_backtesting(cols, fast, slow):
    import pandas as pd
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def sma(x, n):
        return pd.Series(x).rolling(n).mean().to_numpy()

    class Cross(Strategy):
        def init(self):
            self.f = self.I(sma, self.data.Close, fast)
            self.s = self.I(sma, self.data.Close, slow)

        def next(self):
            if not self.position and crossover(self.f, self.s):
                self.buy(size=1)
            elif self.position and crossover(self.s, self.f):
                self.position.close()

    trades = 0
    total = (0.0, 0.0)
    for s in range(cols.shape[1]):
        bt = Backtest(frame(cols, s), Cross, cash=1e12, commission=0.0, finalize_trades=True)
        stats, w, c = timed(bt.run)
        trades += int(stats["# Trades"])
        total = (total[0] + w, total[1] + c)
    return trades, total


def run_vectorbt(cols, fast, slow):
    import pandas as pd
    import vectorbt as vbt

    def go(close):
        f = vbt.MA.run(close, fast, short_name="fast")
        sl = vbt.MA.run(close, slow, short_name="slow")
        entries = f.ma_crossed_above(sl)
        exits = f.ma_crossed_below(sl)
        pf = vbt.Portfolio.from_signals(close, entries, exits, size=1, init_cash=1e12, freq="1min")
        return int(np.sum(pf.trades.count().to_numpy()))

    close = pd.DataFrame(cols[4].T, columns=[f"S{s}" for s in range(cols.shape[1])])
    go(close.iloc[: min(5000, len(close))])  # numba compile, not timed
    trades, w, c = timed(lambda: go(close))
    return trades, (w, c)


def run_nautilus(cols, fast, slow):
    from nautilus_anchor import run
    return run(cols, fast, slow, timed)


def main():
    engine, path, symbols, n, fast, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    cols = load(path, symbols, n)
    fn = {"backtrader": run_backtrader, "backtesting": run_backtesting, "vectorbt": run_vectorbt, "nautilus": run_nautilus}[engine]
    trades, (wall, cpu) = fn(cols, fast, slow)
    print(json.dumps({"engine": engine, "bars": symbols * n, "symbols": symbols, "wall": wall, "cpu": cpu, "trades": trades}))


if __name__ == "__main__":
    main()

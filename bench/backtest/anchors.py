"""Anchor engines for bench/backtest.ts: the same SMA(fast)/SMA(slow) long-only crossover on the same
bars (a float64 file of 6 x symbols x bars: time_ms, open, high, low, close, volume, written by the
TypeScript side). Prints one JSON line: engine, bars, symbols, wall and CPU seconds of the run, CPU seconds of loading
the bars into the engine's own input (reported separately, not in the run), trades.

CPU seconds are time.process_time() of this process (user + system, all its threads): on a shared,
loaded machine that is the work the engine did, where wall clock also counts the time other
processes held the cores. What is excluded from the run, for every engine alike: interpreter start
and imports, reading the file, building the engine's input (pandas frame, nautilus Bar objects,
backtrader's feed preload into its lines), and vectorbt's numba compile (a warm-up run on 5,000
bars). What is included: indicators, signals, order handling and the engine's bookkeeping.

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


class Clock:
    """Run and load time summed over the symbols of one engine."""

    def __init__(self):
        self.wall = self.cpu = self.load = 0.0

    def run(self, fn):
        out, w, c = timed(fn)
        self.wall += w
        self.cpu += c
        return out

    def loading(self, fn):
        out, _, c = timed(fn)
        self.load += c
        return out


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

    class Feed(bt.feeds.PandasData):
        """PandasData whose preload (the frame copied into backtrader's lines, inside cerebro.run)
        is timed, so it counts as loading, not as the run."""
        preload_wall = preload_cpu = 0.0

        def preload(self):
            _, w, c = timed(super().preload)
            Feed.preload_wall += w
            Feed.preload_cpu += c

    trades = 0
    clock = Clock()
    for s in range(cols.shape[1]):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(Feed(dataname=clock.loading(lambda: frame(cols, s))))
        cerebro.broker.setcash(1e12)
        cerebro.addstrategy(Cross)
        cerebro.addanalyzer(bt.analyzers.TradeAnalyzer)
        res = clock.run(lambda: cerebro.run(runonce=True))
        trades += res[0].analyzers.tradeanalyzer.get_analysis().get("total", {}).get("closed", 0)
    clock.wall -= Feed.preload_wall
    clock.cpu -= Feed.preload_cpu
    clock.load += Feed.preload_cpu
    return trades, clock


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
    clock = Clock()
    for s in range(cols.shape[1]):
        bt = clock.loading(lambda: Backtest(frame(cols, s), Cross, cash=1e12, commission=0.0, finalize_trades=True))
        stats = clock.run(bt.run)
        trades += int(stats["# Trades"])
    return trades, clock


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

    clock = Clock()
    close = clock.loading(lambda: pd.DataFrame(cols[4].T, columns=[f"S{s}" for s in range(cols.shape[1])]))
    go(close.iloc[: min(5000, len(close))])  # numba compile, not timed
    trades = clock.run(lambda: go(close))
    return trades, clock


def run_nautilus(cols, fast, slow):
    from nautilus_anchor import run
    clock = Clock()
    return run(cols, fast, slow, clock), clock


def main():
    engine, path, symbols, n, fast, slow = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    cols = load(path, symbols, n)
    fn = {"backtrader": run_backtrader, "backtesting": run_backtesting, "vectorbt": run_vectorbt, "nautilus": run_nautilus}[engine]
    trades, clock = fn(cols, fast, slow)
    print(json.dumps({"engine": engine, "bars": symbols * n, "symbols": symbols, "wall": clock.wall, "cpu": clock.cpu, "load_cpu": clock.load, "trades": trades}))


if __name__ == "__main__":
    main()

"""backtrader run of the SMA crossover the TypeScript engine runs (tests/backtest/oracle.test.ts).

Reads bars (CSV: open_time_ms,open,high,low,close,volume) and a JSON spec from argv, prints JSON:
the closed trades (entry/exit bar indices, size, prices, net pnl) and the final portfolio value.
Fill rule: "close" = cheat-on-close (a market order fills at the close of the bar that issued it,
the paper exchange's rule), "nextOpen" = backtrader's default (the next bar's open).
Sizing: "all" = floor(cash / (close * (1 + commission))) units at the signal bar, else a fixed size.
"""
import csv
import datetime as dt
import json
import math
import sys

import backtrader as bt


def num(t_ms):
    return bt.date2num(dt.datetime.fromtimestamp(t_ms / 1000, dt.timezone.utc).replace(tzinfo=None))


class Rows(bt.feed.DataBase):
    params = (("rows", None),)

    def start(self):
        super().start()
        self._i = 0

    def _load(self):
        if self._i >= len(self.p.rows):
            return False
        t, o, h, l, c, v = self.p.rows[self._i]
        self._i += 1
        self.lines.datetime[0] = num(t)
        self.lines.open[0], self.lines.high[0], self.lines.low[0], self.lines.close[0] = o, h, l, c
        self.lines.volume[0], self.lines.openinterest[0] = v, 0.0
        return True


class SmaCross(bt.Strategy):
    params = (("fast", 10), ("slow", 30), ("quantity", "all"), ("commission", 0.0), ("bar_of", None))

    def __init__(self):
        self.fast = bt.ind.SMA(self.data.close, period=self.p.fast)
        self.slow = bt.ind.SMA(self.data.close, period=self.p.slow)
        self.bar_of = self.p.bar_of
        self.trades = []
        self.entry_bar = None

    def next(self):
        f0, s0, f1, s1 = self.fast[0], self.slow[0], self.fast[-1], self.slow[-1]
        if self.position.size == 0:
            if f0 > s0 and f1 <= s1:
                if self.p.quantity == "all":
                    size = math.floor(self.broker.getcash() / (self.data.close[0] * (1 + self.p.commission)))
                else:
                    size = self.p.quantity
                if size > 0:
                    self.buy(size=size)
        elif f0 < s0 and f1 >= s1:
            self.close()

    def notify_trade(self, trade):
        if trade.isclosed:
            self.trades.append({
                "entryBar": self.bar_of[trade.dtopen],
                "exitBar": self.bar_of[trade.dtclose],
                "entryPrice": trade.price,
                "pnl": trade.pnlcomm,
            })


def main():
    bars_path, spec = sys.argv[1], json.loads(sys.argv[2])
    with open(bars_path, newline="") as f:
        rows = [(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])) for r in csv.reader(f)]
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(Rows(rows=rows))
    cerebro.broker.setcash(spec["cash"])
    cerebro.broker.setcommission(commission=spec["commission"])
    cerebro.broker.set_coc(spec["fillAt"] == "close")
    cerebro.addstrategy(SmaCross, fast=spec["fast"], slow=spec["slow"], quantity=spec["quantity"], commission=spec["commission"],
                        bar_of={num(r[0]): i for i, r in enumerate(rows)})
    strat = cerebro.run()[0]
    json.dump({"trades": strat.trades, "finalEquity": cerebro.broker.getvalue(), "bars": len(rows)}, sys.stdout)


if __name__ == "__main__":
    main()

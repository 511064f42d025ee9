"""NautilusTrader BacktestEngine (low-level API) running the SMA crossover for bench/backtest.ts.

Bars go through BarDataWrangler onto a Binance-like BTCUSDT instrument (price precision 2, like the
generated bars) on a cash account; one unit per entry (nautilus treats bar volume as liquidity, so
an all-in order would fill in parts). Fills happen at the signal bar's close (nautilus has no
next-open fill for bars)."""
import pandas as pd

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.config import BacktestEngineConfig, LoggingConfig, StrategyConfig
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
from nautilus_trader.model.identifiers import InstrumentId, TraderId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy

try:
    from nautilus_trader.indicators import SimpleMovingAverage
except ImportError:  # older layout
    from nautilus_trader.indicators.average.sma import SimpleMovingAverage


class CrossConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    fast: int
    slow: int


class Cross(Strategy):
    def __init__(self, config: CrossConfig):
        super().__init__(config)
        self.fast = SimpleMovingAverage(config.fast)
        self.slow = SimpleMovingAverage(config.slow)
        self.prev = None
        self.exits = 0

    def on_start(self):
        self.instrument = self.cache.instrument(self.config.instrument_id)
        self.one = self.instrument.make_qty(1)
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar):
        if not self.slow.initialized:
            return
        f, s = self.fast.value, self.slow.value
        if self.prev is not None:
            pf, ps = self.prev
            iid = self.config.instrument_id
            if f > s and pf <= ps and self.portfolio.is_flat(iid):
                self.submit_order(self.order_factory.market(iid, OrderSide.BUY, self.one))
            elif f < s and pf >= ps and self.portfolio.is_net_long(iid):
                self.submit_order(self.order_factory.market(iid, OrderSide.SELL, self.one))
                self.exits += 1
        self.prev = (f, s)


def run(cols, fast, slow, clock):
    """Runs each symbol on its own engine; `clock` (anchors.Clock) keeps the set-up (engine, venue,
    instrument, the frame turned into Bar objects) as loading, apart from the run. Returns the
    round trips (exits)."""
    trades = 0
    for s in range(cols.shape[1]):
        def setup():
            engine = BacktestEngine(BacktestEngineConfig(trader_id=TraderId("BENCH-001"), logging=LoggingConfig(bypass_logging=True)))
            venue = Venue("BINANCE")
            engine.add_venue(venue=venue, oms_type=OmsType.NETTING, account_type=AccountType.CASH, base_currency=None,
                             starting_balances=[Money(1_000_000_000, USDT), Money(0, BTC)])
            instrument = TestInstrumentProvider.btcusdt_binance()
            engine.add_instrument(instrument)
            bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
            df = pd.DataFrame({"open": cols[1, s], "high": cols[2, s], "low": cols[3, s], "close": cols[4, s], "volume": cols[5, s]},
                              index=pd.to_datetime(cols[0, s].astype("int64"), unit="ms", utc=True))
            engine.add_data(BarDataWrangler(bar_type, instrument).process(df))
            strat = Cross(CrossConfig(instrument_id=instrument.id, bar_type=bar_type, fast=fast, slow=slow))
            engine.add_strategy(strat)
            return engine, strat

        engine, strat = clock.loading(setup)
        clock.run(engine.run)
        trades += strat.exits
        engine.dispose()
    return trades

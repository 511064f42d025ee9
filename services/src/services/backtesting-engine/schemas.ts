/** Request and response shapes of the backtesting API (JSON schema via TypeBox: the kit validates them). */
import { Type, type Static } from "../../kit";

const decimal = (description: string) => Type.String({ pattern: "^[0-9]{1,6}(\\.[0-9]{1,8})?$", description });
/** Fees and slippage caps below 10,000 bps (100 %): past it a sell fills at a negative price or pays more than its proceeds. */
const bps = (description: string) => Type.String({ pattern: "^[0-9]{1,4}(\\.[0-9]{1,8})?$", description: `${description}, below 10000` });
/**
 * A grid's values of each parameter, each value once: a repeated value is the same parameter set again,
 * so `{"fast": [5, 5, ... 5]}` was a 1,000-job sweep of one backtest run 1,000 times (and a walk-forward
 * searched each set as often in every fold); a 400 naming the parameter now.
 */
const parameterValues = Type.Record(Type.String({ pattern: "^[A-Za-z][A-Za-z0-9]{0,31}$" }), Type.Array(Type.Number(), { minItems: 1, maxItems: 1_000, uniqueItems: true }));

export const BacktestRequest = Type.Object(
  {
    strategy: Type.String({ minLength: 1, maxLength: 64, description: "a name from GET /strategies" }),
    parameters: Type.Optional(Type.Record(Type.String({ pattern: "^[A-Za-z][A-Za-z0-9]{0,31}$" }), Type.Number())),
    symbols: Type.Array(Type.String({ pattern: "^[A-Z0-9]{2,20}$" }), { minItems: 1, maxItems: 50, uniqueItems: true }),
    interval: Type.Union(["1m", "5m", "15m", "1h", "4h", "1d"].map((i) => Type.Literal(i))),
    period: Type.Object({ start: Type.String({ format: "date-time" }), end: Type.String({ format: "date-time" }) }, { additionalProperties: false }),
    data: Type.Union([
      Type.Object({ source: Type.Literal("synthetic"), seed: Type.Union([Type.Integer(), Type.String({ minLength: 1, maxLength: 64 })]) }, { additionalProperties: false }),
      Type.Object({ source: Type.Literal("clickhouse") }, { additionalProperties: false }),
      // The file name is checked by the service (bars.ts), which names data.file in its 400.
      Type.Object({ source: Type.Literal("replay"), file: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
    ]),
    mode: Type.Optional(Type.Union([Type.Literal("event"), Type.Literal("vectorized")])),
    fillAt: Type.Optional(Type.Union([Type.Literal("close"), Type.Literal("nextOpen")])),
    initialCash: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e12 })),
    // At least the books' smallest position (the ledger counts a position under 1e-12 as none): a smaller
    // quantity filled nothing, and its run "succeeded" without a trade (session 64b).
    quantity: Type.Optional(Type.Union([Type.Number({ minimum: 1e-12, maximum: 1e9 }), Type.Literal("all")])),
    quantityStep: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1e6, description: "the lot: \"all\" buys whole lots of it; a fixed quantity must be a whole number of lots (default 1e-8)" })),
    execution: Type.Optional(
      Type.Object(
        {
          makerFeeBps: Type.Optional(bps("maker fee, basis points")),
          takerFeeBps: Type.Optional(bps("taker fee, basis points")),
          slippageBps: Type.Optional(bps("slippage, basis points")),
          impactBps: Type.Optional(decimal("size impact, basis points per unit of bar volume")),
          maxSlippageBps: Type.Optional(bps("slippage cap, basis points")),
          tickSize: Type.Optional(decimal("price tick")),
          maxParticipation: Type.Optional(decimal("fraction of a bar's volume resting orders may fill, above 0 and at most 1")),
        },
        { additionalProperties: false },
      ),
    ),
    sweep: Type.Optional(Type.Object({ parameters: parameterValues }, { additionalProperties: false })),
    walkForward: Type.Optional(
      Type.Object({ folds: Type.Integer({ minimum: 1, maximum: 20 }), parameters: parameterValues }, { additionalProperties: false }),
    ),
  },
  { additionalProperties: false },
);
export type BacktestRequest = Static<typeof BacktestRequest>;

export const RunId = Type.Object({ id: Type.String({ format: "uuid" }) });
export const JobRef = Type.Object({ id: Type.String({ format: "uuid" }), job: Type.Integer({ minimum: 0, maximum: 100_000 }) });
export const Page = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 1_000 })),
  // Bounded: PostgreSQL's OFFSET is a bigint and ClickHouse's a UInt32 (a larger one was a 500).
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000_000, default: 0 })),
});

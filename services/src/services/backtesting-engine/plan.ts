/**
 * Domain: what a submitted backtest asks for, checked beyond its JSON schema (strategy and
 * parameters exist and fit, the period is not empty, the bar count fits the limit), and its split
 * into jobs: one per run, one per parameter set of a sweep, one per fold of a walk-forward.
 */
import { ParameterError, resolveParameters, strategies, type Parameters } from "../../backtest";
import { executionOptionIssue, floatArithmetic } from "../../trading/executionRules";
import { intervalMs } from "../../trading/types";
import type { BacktestRequest } from "./schemas";

export interface Limits {
  /** Bars one backtest may read in total (symbols x bars in the period). */
  maxBars: number;
  /** Parameter sets one sweep may expand to. */
  maxParameterSets: number;
  /**
   * Bars one job may simulate: a walk-forward fold runs every set of its grid over its training
   * window (grid x training bars x symbols) and the best over its test window. Without it, one fold
   * of a 1,000-set grid over 2.5M training bars was one job of 2.5 billion bar-steps (about 11
   * minutes of a replica) counted as one against the open-jobs cap.
   */
  maxJobBarSteps: number;
}

export type JobKind = "run" | "sweep" | "walk-forward";

/** One unit of work a replica claims from the queue. */
export interface JobSpec {
  kind: JobKind;
  /** The parameter set (run, sweep) or the grid searched in-sample (walk-forward). */
  parameters?: Parameters;
  grid?: Parameters[];
  /** Open-time window the job reports on, epoch ms inclusive; walk-forward also has its training window. */
  from: number;
  to: number;
  train?: { from: number; to: number };
}

export interface Plan {
  strategy: string;
  jobs: JobSpec[];
  barsPerSymbol: number;
}

const fail = (field: string, message: string): never => {
  throw new ParameterError(field, message);
};

/** Cartesian product of the grid's value lists (each set checked like a single run's parameters); `field` names the grid in a 400. */
function expandGrid(strategy: string, grid: Record<string, number[]>, limit: number, field: "sweep.parameters" | "walkForward.parameters"): Parameters[] {
  const def = strategies.get(strategy)!;
  const keys = Object.keys(grid);
  if (keys.length === 0) fail(field, "must name at least one parameter");
  let count = 1;
  for (const k of keys) {
    if (!Object.hasOwn(def.parameters, k)) fail(`${field}.${k}`, `unknown parameter of ${strategy} (known: ${Object.keys(def.parameters).join(", ")})`);
    count *= grid[k].length;
    if (count > limit) fail(field, `expands to more than ${limit} parameter sets`);
  }
  let sets: Record<string, number>[] = [{}];
  for (const k of keys) sets = sets.flatMap((s) => grid[k].map((v) => ({ ...s, [k]: v })));
  // Sets that break a cross-parameter rule (fast >= slow) are dropped, not fatal: grids are rectangles.
  const valid: Parameters[] = [];
  for (const s of sets) {
    try {
      valid.push(resolveParameters(def, s, field));
    } catch (e) {
      if (!(e instanceof ParameterError) || !isCrossRule(e, keys)) throw e;
    }
  }
  if (valid.length === 0) fail(field, "no parameter set satisfies the strategy's rules");
  return valid;
}
/** A cross-parameter rule names a field the grid varies but is not a bounds/type error of a single value. */
const isCrossRule = (e: ParameterError, keys: string[]) => / must be (smaller|below) /.test(e.message) && keys.some((k) => e.field.endsWith(`.${k}`));

/**
 * A window parameter (ParameterSpec.bars) as long as the bars it runs over, or longer: its indicator
 * never has a value there, and the run "succeeded" without a trade (session 65). `bars` is the
 * shortest stretch a job runs a set over (a walk-forward fold's segment); a window the request did
 * not give (`given`) is the strategy's default, and is named so.
 */
function checkWindows(strategy: string, sets: Parameters[], given: object, bars: number, field: string, over: string): void {
  const def = strategies.get(strategy)!;
  for (const [k, spec] of Object.entries(def.parameters)) {
    const longest = spec.bars ? Math.max(...sets.map((s) => s[k])) : -Infinity;
    if (longest >= bars)
      fail(`${field}.${k}`, `is a window of ${longest} bars${Object.hasOwn(given, k) ? "" : " (its default)"}, and ${over} has ${bars}: it would never signal (a shorter window or a longer period)`);
  }
}

/** Whether `quantity` is a whole number of `lot`s, within float error (the engines' grid rounding: 0.3 is 3 lots of 0.1). */
export function wholeLots(quantity: number, lot: number): boolean {
  return floatArithmetic.toStep(quantity, lot, "down") === quantity;
}

/** The cash each symbol's run starts with: the request's initial cash split equally between its symbols. */
export function cashPerSymbol(req: Pick<BacktestRequest, "initialCash" | "symbols">): number {
  return (req.initialCash ?? 100_000) / req.symbols.length;
}

export function planBacktest(req: BacktestRequest, limits: Limits): Plan {
  const def = strategies.get(req.strategy) ?? fail("strategy", `unknown strategy ${JSON.stringify(req.strategy)} (known: ${strategies.names().join(", ")})`);
  const step = intervalMs(req.interval);
  const from = Date.parse(req.period.start);
  const to = Date.parse(req.period.end);
  if (!(to > from)) fail("period.end", "must be after period.start (the period is empty)");
  const barsPerSymbol = Math.floor((to - from) / step);
  if (barsPerSymbol < 1) fail("period", `is shorter than one ${req.interval} bar`);
  const total = barsPerSymbol * req.symbols.length;
  if (total > limits.maxBars) fail("period", `asks for ${total.toLocaleString("en")} bars (${req.symbols.length} symbols x ${barsPerSymbol.toLocaleString("en")}), more than the limit of ${limits.maxBars.toLocaleString("en")}`);
  const last = from + (barsPerSymbol - 1) * step;
  // The rules' bounds (trading/executionRules.ts): a tick of 0 made every fill price NaN, and the run
  // "succeeded" without a single trade; a participation above 1 filled more than a bar traded.
  const execution = req.execution && executionOptionIssue(req.execution);
  if (execution) fail(`execution.${execution.option}`, execution.message);
  // A positive initialCash so small that its share per symbol is 0 (5e-324 over two symbols) was taken,
  // and every attempt of its job failed as if on a platform error ("submit it again later").
  if (!(cashPerSymbol(req) > 0)) fail("initialCash", `is split equally between the ${req.symbols.length} symbols and leaves each of them none: give more`);
  // The lot sizes "all" (the affordable units, in whole lots); the engines take a fixed quantity as given, so one
  // that is no whole number of lots (1.5 with a lot of 1) traded what no exchange with that lot takes (session 65b).
  if (req.quantityStep !== undefined && typeof req.quantity === "number") {
    if (req.quantityStep > req.quantity)
      fail("quantityStep", `is larger than quantity (${req.quantity}): an order of ${req.quantity} is no whole number of lots of ${req.quantityStep}`);
    if (!wholeLots(req.quantity, req.quantityStep))
      fail("quantity", `is ${req.quantity}, no whole number of lots of ${req.quantityStep} (quantityStep): ${floatArithmetic.toStep(req.quantity, req.quantityStep, "down")} or ${floatArithmetic.toStep(req.quantity, req.quantityStep, "up")}`);
  }
  if (req.sweep && req.walkForward) fail("walkForward", "cannot be combined with sweep (a walk-forward searches its own grid: walkForward.parameters)");
  if (req.sweep) {
    if (req.parameters) fail("parameters", "a sweep takes its values from sweep.parameters");
    const sets = expandGrid(def.name, req.sweep.parameters, limits.maxParameterSets, "sweep.parameters");
    checkWindows(def.name, sets, req.sweep.parameters, barsPerSymbol, "sweep.parameters", "the period");
    return { strategy: def.name, barsPerSymbol, jobs: sets.map((parameters) => ({ kind: "sweep", parameters, from, to: last })) };
  }
  if (req.walkForward) {
    const { folds, parameters } = req.walkForward;
    const grid = expandGrid(def.name, parameters, limits.maxParameterSets, "walkForward.parameters");
    // folds + 1 equal segments: fold k trains on segment k and is tested on segment k + 1.
    const seg = Math.floor(barsPerSymbol / (folds + 1));
    if (seg < 2) fail("walkForward.folds", `leaves fewer than 2 bars per segment (${barsPerSymbol} bars, ${folds} folds)`);
    // Each set is searched over a fold's training segment, and the best tested over the next one.
    checkWindows(def.name, grid, parameters, seg, "walkForward.parameters", `a fold's segment (${barsPerSymbol} bars in ${folds + 1})`);
    const steps = (grid.length * seg + seg) * req.symbols.length;
    if (steps > limits.maxJobBarSteps)
      fail("walkForward.parameters", `${grid.length} parameter sets over ${seg.toLocaleString("en")} training bars a fold (${req.symbols.length} symbols) are ${steps.toLocaleString("en")} bar-steps a job, more than the limit of ${limits.maxJobBarSteps.toLocaleString("en")}: use fewer sets, more folds or a shorter period`);
    const at = (k: number) => from + k * seg * step;
    return {
      strategy: def.name,
      barsPerSymbol,
      jobs: Array.from({ length: folds }, (_, k) => ({
        kind: "walk-forward" as const,
        grid,
        train: { from: at(k), to: at(k + 1) - step },
        from: at(k + 1),
        to: k === folds - 1 ? last : at(k + 2) - step,
      })),
    };
  }
  const parameters = resolveParameters(def, req.parameters ?? {});
  checkWindows(def.name, [parameters], req.parameters ?? {}, barsPerSymbol, "parameters", "the period");
  return { strategy: def.name, barsPerSymbol, jobs: [{ kind: "run", parameters, from, to: last }] };
}

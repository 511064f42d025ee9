/** The two anchor venvs of bench/backtest.ts (nautilus-trader needs pandas < 3, vectorbt 1.2.0 pandas >= 3). */
import { pythonVenv } from "../../tests/harness/python";

export const ANCHORS_VENV = ["backtrader==1.9.78.123", "backtesting==0.6.6", "vectorbt==1.2.0"];
export const NAUTILUS_VENV = ["nautilus_trader==1.221.0", "pandas<3"];

export const anchorsVenv = () => pythonVenv("bench-anchors", ANCHORS_VENV, 5_400_000);
export const nautilusVenv = () => pythonVenv("bench-nautilus", NAUTILUS_VENV, 5_400_000);

if (require.main === module) {
  void Promise.all([anchorsVenv(), nautilusVenv()]).then((v) => console.log(JSON.stringify(v)));
}

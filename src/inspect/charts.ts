/** The statecharts of the machines a server's sessions run, computed once per machine definition. */
import type { AnyStateMachine } from 'xstate';
import { type Statechart, statechartOf } from './statechart.js';

/** Statecharts by machine config (a machine given implementations with provide() keeps its config). */
export class ChartRegistry {
  readonly #byConfig = new WeakMap<object, string>();
  readonly #charts = new Map<string, { readonly chart: Statechart; readonly json: string }>();

  keyOf(machine: AnyStateMachine): string {
    const config = machine.config as object;
    const known = this.#byConfig.get(config);
    if (known !== undefined) return known;
    const chart = statechartOf(machine);
    const json = JSON.stringify(chart);
    // Machines built per session from one definition (a playbook's) share a key when their charts agree.
    let key = chart.id;
    for (let n = 2; this.#charts.has(key) && this.#charts.get(key)?.json !== json; n++) key = `${chart.id}#${n}`;
    if (!this.#charts.has(key)) this.#charts.set(key, { chart, json });
    this.#byConfig.set(config, key);
    return key;
  }

  get(key: string): Statechart | undefined {
    return this.#charts.get(key)?.chart;
  }
}

export function isMachine(logic: unknown): logic is AnyStateMachine {
  return typeof logic === 'object' && logic !== null && 'root' in logic && 'config' in logic && typeof (logic as { transition?: unknown }).transition === 'function';
}

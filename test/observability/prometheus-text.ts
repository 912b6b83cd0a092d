/**
 * A small parser of the Prometheus text exposition format (version 0.0.4), enough to read what
 * `GET /metrics` serves: `# HELP` / `# TYPE` lines and samples `name{label="value",…} value`.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  /** Metric family → its `# TYPE` (counter, gauge, histogram, summary, untyped). */
  readonly types: ReadonlyMap<string, string>;
  readonly help: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

/** Like Prometheus (Go's ParseFloat): NaN and Inf in any case; prom-client writes an empty mean as `Nan`. */
function number(text: string): number {
  const word = text.toLowerCase();
  if (word === '+inf' || word === 'inf') return Number.POSITIVE_INFINITY;
  if (word === '-inf') return Number.NEGATIVE_INFINITY;
  if (word === 'nan') return Number.NaN;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`not a sample value: ${text}`);
  return value;
}

function unescape(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function labels(text: string | undefined, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === undefined || text.trim() === '') return out;
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const at = LABEL.lastIndex;
    const match = LABEL.exec(text);
    if (match === null || match.index !== at) throw new Error(`malformed labels in: ${line}`);
    out[match[1] as string] = unescape(match[2] as string);
  }
  return out;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const [, keyword, name, ...rest] = line.split(' ');
      if (keyword === 'TYPE' && name !== undefined) types.set(name, rest.join(' '));
      else if (keyword === 'HELP' && name !== undefined) help.set(name, rest.join(' '));
      continue;
    }
    const match = SAMPLE.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    let sample: number;
    try {
      sample = number(match[3] as string);
    } catch {
      throw new Error(`not a sample value in: ${line}`);
    }
    samples.push({ name: match[1] as string, labels: labels(match[2], line), value: sample });
  }
  return { types, help, samples };
}

/** The samples named `name` whose labels include `labels`. */
export function find(exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
  return exposition.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one sample named `name` with exactly these labels (besides none other), or an error. */
export function value(exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): number {
  const matching = exposition.samples.filter(
    (s) => s.name === name && Object.keys(s.labels).length === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (matching.length !== 1) throw new Error(`${matching.length} samples ${name}${JSON.stringify(labels)}`);
  return (matching[0] as Sample).value;
}

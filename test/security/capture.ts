/** A writable stream that keeps every pino line written to it (tests read what was logged). */
import { Writable } from 'node:stream';

export class LineCapture extends Writable {
  readonly raw: string[] = [];
  #partial = '';

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const text = this.#partial + chunk.toString();
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) if (line.length > 0) this.raw.push(line);
    callback();
  }

  /** Every line, parsed. */
  lines(): Record<string, unknown>[] {
    return this.raw.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  /** Everything written, as one text (what a log reader would search). */
  text(): string {
    return [...this.raw, this.#partial].join('\n');
  }
}

/**
 * Run by worker-model.test.ts in a process of its own: loads the worker model (as a server's warm-up
 * does) and, with `used`, scores one batch; then returns. An idle model must not keep the process
 * alive: the process should exit by itself, at once.
 */
import { loadSileroModel, SILERO_INPUT, SILERO_STATE } from '../../src/vad/model.js';

const model = await loadSileroModel({ thread: 'worker' });
if (process.argv[2] === 'used') await model.run(new Float32Array(SILERO_INPUT), new Float32Array(2 * SILERO_STATE), 1);
console.log('loaded');

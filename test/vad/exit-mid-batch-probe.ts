/**
 * Run by worker-model.test.ts in a process of its own: starts a large batch in the VAD worker and
 * calls process.exit while it runs. Terminating a thread inside onnxruntime-node would abort the
 * process (exit code 134); the model's exit hook waits for the batch to leave ORT first.
 */
import { loadSileroModel, SILERO_INPUT, SILERO_STATE } from '../../src/vad/model.js';

const model = await loadSileroModel({ thread: 'worker' });
const n = 1024;
void model.run(new Float32Array(n * SILERO_INPUT), new Float32Array(2 * n * SILERO_STATE), n);
setTimeout(() => process.exit(0), Number(process.argv[2] ?? 1));

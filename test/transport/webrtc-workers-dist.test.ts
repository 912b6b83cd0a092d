/**
 * The built package starts its WebRTC worker from `webrtc-worker.js` (no tsx): the transport
 * modules are compiled with the build's own tsconfig into a scratch directory and a plain `node`
 * process negotiates a call through a worker of the compiled pool.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'voxstate-dist-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function build(): void {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.build.json'), { outDir: out, declaration: false, sourceMap: false }, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  });
  if (config === undefined) throw new Error('cannot read tsconfig.build.json');
  // Only the pool and the worker entry (the worker is not imported by anything: a build must list it).
  const roots = ['src/transport/webrtc-pool.ts', 'src/transport/webrtc-worker.ts'].map((file) => join(ROOT, file));
  const result = ts.createProgram(roots, config.options).emit();
  const errors = result.diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }));
  writeFileSync(join(out, 'package.json'), '{"type":"module"}\n');
  symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'), 'dir');
}

const SCRIPT = `
import { WebRtcWorkerPool } from './src/transport/webrtc-pool.js';
import { RTCPeerConnection, useOPUS } from 'werift';
const pool = new WebRtcWorkerPool({ workers: 1 });
const transport = pool.createTransport({ hostAddresses: ['127.0.0.1'] });
const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv4: false, iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'], codecs: { audio: [useOPUS()], video: [] } });
pc.addTransceiver('audio', { direction: 'sendrecv' });
await pc.setLocalDescription(await pc.createOffer());
const answer = await transport.handleOffer(pc.localDescription.sdp);
console.log(JSON.stringify({ answer, threadId: transport.workerThreadId, execArgv: process.execArgv }));
await transport.close();
await pc.close();
await pool.close();
`;

let built = false;

describe('WebRtcWorkerPool from the built package', () => {
  it.each([
    ['node app.mjs', (dir: string) => [join(dir, 'app.mjs')]],
    ["node --input-type=module -e '…' (flags a worker must not inherit)", () => ['--input-type=module', '-e', SCRIPT]],
  ])('%s: runs its worker from webrtc-worker.js without tsx and answers an offer', async (_how, argv) => {
    if (!built) {
      build();
      writeFileSync(join(out, 'app.mjs'), SCRIPT);
      built = true;
    }
    const child = spawn(process.execPath, argv(out), { cwd: out, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { answer: string; threadId: number; execArgv: string[] };
    expect(result.execArgv.join(' ')).not.toMatch(/tsx/);
    expect(result.threadId).toBeGreaterThan(0);
    expect(result.answer).toContain('m=audio');
    expect(result.answer).toMatch(/a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/);
  });
});

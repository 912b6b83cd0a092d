/**
 * Regenerates `descriptor.ts` from `motion.proto` (the source of truth kept in the repo).
 *
 *   npx tsx src/motion/protocol/generate-descriptor.ts          # write descriptor.ts
 *   npx tsx src/motion/protocol/generate-descriptor.ts --check  # exit 1 when it is stale
 *
 * The runtime never reads the .proto: the descriptor is compiled into `dist/` with the rest of the
 * code, so `npm run build` output needs no copy step. A unit test fails when the two drift apart.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

export const protoPath = fileURLToPath(new URL('./motion.proto', import.meta.url));
export const descriptorPath = fileURLToPath(new URL('./descriptor.ts', import.meta.url));

/** The JSON descriptor protobufjs builds from motion.proto (field names kept in snake_case). */
export function descriptorFromProto(source: string): unknown {
  const parsed = protobuf.parse(source, { keepCase: true });
  return parsed.root.toJSON();
}

export function renderDescriptorModule(descriptor: unknown): string {
  return [
    '// Generated from motion.proto by generate-descriptor.ts. Do not edit by hand.',
    '',
    `export const motionDescriptor = ${JSON.stringify(descriptor, null, 2)};`,
    '',
  ].join('\n');
}

function main(argv: readonly string[]): void {
  const rendered = renderDescriptorModule(descriptorFromProto(readFileSync(protoPath, 'utf8')));
  if (argv.includes('--check')) {
    const current = readFileSync(descriptorPath, 'utf8');
    if (current !== rendered) {
      process.stderr.write('descriptor.ts is stale: run npx tsx src/motion/protocol/generate-descriptor.ts\n');
      process.exitCode = 1;
    }
    return;
  }
  writeFileSync(descriptorPath, rendered);
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2));
}

import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `import 'voxstate'` (the examples) loads the sources, the same copy the tests import.
  resolve: { conditions: ['voxstate-source'] },
  ssr: { resolve: { conditions: ['voxstate-source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.integration.test.ts', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});

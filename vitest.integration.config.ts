import { defineConfig } from 'vitest/config';

/** Tests against real paid services; each suite skips itself when its credentials are absent. */
export default defineConfig({
  test: {
    include: ['test/**/*.integration.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});

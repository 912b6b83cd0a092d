/** `--session-store` / VOXSTATE_SESSION_STORE: which store the CLI runs with, and clear errors for anything else. */
import { describe, expect, it } from 'vitest';
import { HELP } from '../../src/cli/main.js';
import { sessionStoreUrl } from '../../src/cli/serve.js';

describe('voxstate serve --session-store', () => {
  it('a redis:// or rediss:// URL selects Redis; the flag wins over the environment; memory or nothing is the default', () => {
    expect(sessionStoreUrl({ sessionStore: 'redis://10.0.0.5:6379' }, { VOXSTATE_SESSION_STORE: 'redis://other:6379' })).toBe('redis://10.0.0.5:6379');
    expect(sessionStoreUrl({}, { VOXSTATE_SESSION_STORE: 'rediss://:pw@cache.example.com:6380/2' })).toBe('rediss://:pw@cache.example.com:6380/2');
    expect(sessionStoreUrl({}, {})).toBeUndefined();
    expect(sessionStoreUrl({ sessionStore: 'memory' }, { VOXSTATE_SESSION_STORE: 'redis://other:6379' })).toBeUndefined();
  });

  it('anything else is a config_invalid error naming where it came from', () => {
    expect(() => sessionStoreUrl({ sessionStore: 'localhost:6379' }, {})).toThrow(/--session-store: expected redis:\/\/host:port/);
    expect(() => sessionStoreUrl({}, { VOXSTATE_SESSION_STORE: 'http://redis:6379' })).toThrow(/VOXSTATE_SESSION_STORE: expected redis:\/\/host:port .*got a http: URL/);
    let thrown: unknown;
    try {
      sessionStoreUrl({ sessionStore: 'nope' }, {});
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'config_invalid', field: '--session-store' });
  });

  it('--help documents the flag and its variable', () => {
    expect(HELP).toMatch(/--session-store <url>/);
    expect(HELP).toMatch(/VOXSTATE_SESSION_STORE/);
  });
});

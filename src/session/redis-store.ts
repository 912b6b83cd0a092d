/**
 * RedisSessionStore — the session store that several voxstate nodes share, so a client can resume
 * its session on any of them (docs/deployment.md). Each session is one Redis hash:
 *
 *   v, node, wid          version, the node that wrote it, the id of that write
 *   state                 live | expired | closed (the last two: a tombstone)
 *   token                 SHA-256 of the current resume token (never the token)
 *   createdAt, updatedAt, expiresAt
 *   body                  JSON: history, audio, principal, playbook stage
 *
 * Every write is one Lua script (atomic on the Redis side): it checks the version the writer
 * expects and refuses the write when the record moved on. The key expires `tombstoneMs` after the
 * record's `expiresAt` (a tombstone: `tombstoneMs` after the end), so Redis itself forgets old
 * sessions. The fields other than `body` stay separate so a claim changes the owner and the token
 * without reading or re-encoding the conversation.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, SessionStoreError, StaleSessionWriteError } from '../errors.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import type { ChatMessage } from '../providers/types.js';
import {
  checkTombstoneMs,
  defaultNodeId,
  type SessionClaim,
  type SessionEnd,
  type SessionEndReason,
  type SessionRecordData,
  type SessionStore,
  type SessionWrite,
  type StoredSession,
} from './store.js';

export interface RedisSessionStoreOptions {
  /** A `redis://` / `rediss://` URL (a connection the store opens and closes), or an ioredis client of yours (left open on `close()`). Default `redis://127.0.0.1:6379`. */
  readonly connection?: string | Redis;
  /** Prefix of every key. Default `voxstate:session:`. */
  readonly keyPrefix?: string;
  /** The id stamped on the records this node writes. Default: host name, process id and a random suffix. */
  readonly nodeId?: string;
  /** How long an ended session's tombstone is kept (and a record past its `expiresAt`). Default 86 400 000 ms (24 h). */
  readonly tombstoneMs?: number;
  /** A command that gets no answer within this time fails (the writer retries it). Default 5 000 ms. Only for a connection the store opens. */
  readonly commandTimeoutMs?: number;
  readonly logger?: Logger;
  readonly now?: () => number;
}

// The check shared by the write and end scripts. h = HMGET v state node wid. A write goes on when it
// expects the stored version of a live record (or of no record: version 0); or when the stored
// version is one of this node's own writes whose answer was lost (ARGV[4], comma separated). It
// returns the stored version when this very write is stored already, and -(stored + 1) when refused.
const CHECK = `
local h = redis.call('HMGET', KEYS[1], 'v', 'state', 'node', 'wid')
local cur = tonumber(h[1] or '0')
local state = h[2]
if not (cur == tonumber(ARGV[1]) and (state == false or state == 'live')) then
  local own = h[3] == ARGV[2] and h[4] and h[4] ~= ''
  if own and h[4] == ARGV[3] then return cur end
  if not (own and state == 'live' and ARGV[4] ~= '' and string.find(',' .. ARGV[4] .. ',', ',' .. h[4] .. ',', 1, true)) then
    return -cur - 1
  end
end
local nv = cur + 1
`;

// ARGV: expected, node, writeId, unconfirmed, token, createdAt, updatedAt, expiresAt, body, dropAt (ms since the epoch)
const WRITE = `${CHECK}
redis.call('HSET', KEYS[1], 'v', nv, 'node', ARGV[2], 'wid', ARGV[3], 'state', 'live', 'token', ARGV[5],
  'createdAt', ARGV[6], 'updatedAt', ARGV[7], 'expiresAt', ARGV[8], 'body', ARGV[9])
redis.call('PEXPIREAT', KEYS[1], ARGV[10])
return nv
`;

// ARGV: expected, node, writeId, unconfirmed, reason, endedAt, tombstoneMs
const END = `${CHECK}
redis.call('HDEL', KEYS[1], 'token', 'body', 'createdAt', 'expiresAt')
redis.call('HSET', KEYS[1], 'v', nv, 'node', ARGV[2], 'wid', ARGV[3], 'state', ARGV[5], 'updatedAt', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return nv
`;

// ARGV: expected, node, token, updatedAt, expiresAt, dropAt, now. Only a live, unexpired record at
// the version the resuming node read can be claimed.
const CLAIM = `
local h = redis.call('HMGET', KEYS[1], 'v', 'state', 'expiresAt')
local cur = tonumber(h[1] or '0')
if cur ~= tonumber(ARGV[1]) or h[2] ~= 'live' or tonumber(h[3] or '0') <= tonumber(ARGV[7]) then return -cur - 1 end
local nv = cur + 1
redis.call('HSET', KEYS[1], 'v', nv, 'node', ARGV[2], 'wid', '', 'token', ARGV[3], 'updatedAt', ARGV[4], 'expiresAt', ARGV[5])
redis.call('PEXPIREAT', KEYS[1], ARGV[6])
return nv
`;

/** The scripts, as ioredis commands (defineCommand loads them once and runs them by SHA). */
interface ScriptCommands {
  voxstateSessionWrite(key: string, ...args: (string | number)[]): Promise<number>;
  voxstateSessionEnd(key: string, ...args: (string | number)[]): Promise<number>;
  voxstateSessionClaim(key: string, ...args: (string | number)[]): Promise<number>;
}

interface Body {
  readonly history: readonly ChatMessage[];
  readonly audio: SessionRecordData['audio'];
  readonly principal?: string;
  readonly playbook?: SessionRecordData['playbook'];
}

export class RedisSessionStore implements SessionStore {
  readonly nodeId: string;
  readonly #redis: Redis & ScriptCommands;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #tombstoneMs: number;
  readonly #now: () => number;
  #closing: Promise<void> | undefined;

  constructor(options: RedisSessionStoreOptions = {}) {
    this.nodeId = options.nodeId ?? defaultNodeId();
    if (this.nodeId.length === 0) throw new ConfigError('nodeId', 'must be a non-empty string');
    this.#prefix = options.keyPrefix ?? 'voxstate:session:';
    this.#tombstoneMs = checkTombstoneMs('tombstoneMs', options.tombstoneMs);
    this.#now = options.now ?? Date.now;
    const logger = options.logger ?? silentLogger();
    const connection = options.connection ?? 'redis://127.0.0.1:6379';
    let redis: Redis;
    if (typeof connection === 'string') {
      if (!/^rediss?:\/\//.test(connection)) throw new ConfigError('connection', 'must be a redis:// or rediss:// URL or an ioredis client');
      const commandTimeout = options.commandTimeoutMs ?? 5000;
      if (!Number.isInteger(commandTimeout) || commandTimeout < 1) throw new ConfigError('commandTimeoutMs', `must be a positive integer, got ${String(commandTimeout)}`);
      const redisOptions: RedisOptions = {
        // Fail a command after one reconnection attempt instead of queueing it for as long as Redis
        // is away: the session's writer keeps the latest record and retries with its own backoff,
        // and a resume answers `session_store_unavailable` (the client tries again) instead of hanging.
        maxRetriesPerRequest: 1,
        commandTimeout,
        // No socket until the first command: a store made for a server that then fails to start holds nothing open.
        lazyConnect: true,
      };
      redis = new Redis(connection, redisOptions);
      this.#owned = true;
      // Without a listener ioredis prints every connection error to the console. The message only:
      // the error objects of failed commands carry their arguments (records).
      let reported = false;
      redis.on('error', (error: Error) => {
        if (reported) return;
        reported = true;
        logger.warn({ message: error.message }, 'session store connection error');
      });
      redis.on('ready', () => {
        if (reported) logger.info('session store connection ready again');
        reported = false;
      });
    } else {
      redis = connection;
      this.#owned = false;
    }
    redis.defineCommand('voxstateSessionWrite', { numberOfKeys: 1, lua: WRITE });
    redis.defineCommand('voxstateSessionEnd', { numberOfKeys: 1, lua: END });
    redis.defineCommand('voxstateSessionClaim', { numberOfKeys: 1, lua: CLAIM });
    this.#redis = redis as Redis & ScriptCommands;
  }

  /** The client this store talks through. */
  get redis(): Redis {
    return this.#redis;
  }

  #key(sessionId: string): string {
    return `${this.#prefix}${sessionId}`;
  }

  async get(sessionId: string): Promise<StoredSession | undefined> {
    const fields = await this.#call(() => this.#redis.hgetall(this.#key(sessionId)));
    const version = Number(fields['v'] ?? 0);
    if (version === 0) return undefined;
    const nodeId = fields['node'] ?? '';
    const state = fields['state'];
    if (state === 'expired' || state === 'closed') return { status: 'ended', reason: state, version, nodeId };
    const expiresAt = Number(fields['expiresAt']);
    if (!(expiresAt > this.#now())) return { status: 'ended', reason: 'expired', version, nodeId };
    let body: Body;
    try {
      body = JSON.parse(fields['body'] ?? '') as Body;
    } catch {
      throw new SessionStoreError(`session ${sessionId}: the stored record is not valid JSON`);
    }
    return {
      status: 'live',
      record: {
        sessionId,
        resumeTokenHash: fields['token'] ?? '',
        history: body.history,
        audio: body.audio,
        ...(body.principal === undefined ? {} : { principal: body.principal }),
        ...(body.playbook === undefined ? {} : { playbook: body.playbook }),
        createdAt: Number(fields['createdAt']),
        updatedAt: Number(fields['updatedAt']),
        expiresAt,
        version,
        nodeId,
      },
    };
  }

  async write(write: SessionWrite): Promise<number> {
    const { record } = write;
    const body: Body = {
      history: record.history,
      audio: record.audio,
      ...(record.principal === undefined ? {} : { principal: record.principal }),
      ...(record.playbook === undefined ? {} : { playbook: record.playbook }),
    };
    const result = await this.#call(() =>
      this.#redis.voxstateSessionWrite(
        this.#key(record.sessionId),
        write.expectedVersion,
        this.nodeId,
        write.writeId,
        (write.unconfirmed ?? []).join(','),
        record.resumeTokenHash,
        record.createdAt,
        record.updatedAt,
        record.expiresAt,
        JSON.stringify(body),
        record.expiresAt + this.#tombstoneMs,
      ),
    );
    return this.#version(record.sessionId, write.expectedVersion, result);
  }

  async claim(sessionId: string, claim: SessionClaim): Promise<number> {
    const result = await this.#call(() =>
      this.#redis.voxstateSessionClaim(
        this.#key(sessionId),
        claim.expectedVersion,
        this.nodeId,
        claim.resumeTokenHash,
        claim.updatedAt,
        claim.expiresAt,
        claim.expiresAt + this.#tombstoneMs,
        this.#now(),
      ),
    );
    return this.#version(sessionId, claim.expectedVersion, result);
  }

  async end(sessionId: string, end: SessionEnd): Promise<void> {
    const reason: SessionEndReason = end.reason;
    const result = await this.#call(() =>
      this.#redis.voxstateSessionEnd(this.#key(sessionId), end.expectedVersion, this.nodeId, end.writeId, (end.unconfirmed ?? []).join(','), reason, this.#now(), this.#tombstoneMs),
    );
    this.#version(sessionId, end.expectedVersion, result);
  }

  async delete(sessionId: string): Promise<void> {
    await this.#call(() => this.#redis.del(this.#key(sessionId)));
  }

  /** Quits the connection the store opened (one passed in is yours to close); resolves once it is closed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#quit();
    return this.#closing;
  }

  async #quit(): Promise<void> {
    const redis = this.#redis;
    if (!this.#owned || redis.status === 'end') return;
    if (redis.status !== 'ready') {
      // Never connected (lazy), or away between reconnection attempts: stop trying; nothing is left open.
      redis.disconnect();
      return;
    }
    const ended = new Promise<void>((resolve) => redis.once('end', () => resolve()));
    await redis.quit().catch(() => redis.disconnect());
    await ended;
  }

  #version(sessionId: string, expected: number, result: number): number {
    if (result < 0) throw new StaleSessionWriteError(sessionId, expected, -result - 1);
    return result;
  }

  /** Runs a command; a connection or server failure becomes a SessionStoreError (its message only). */
  async #call<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw new SessionStoreError(`session store: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

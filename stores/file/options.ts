/** FileStore's options: what each one means, its default, and the one place they are checked. */
import { rejectUnknownKeys, requirePositive } from '../../lib/check-options.js'

/**
 * Options for {@link FileStore}. Only `dir` is required; bad values throw a TypeError at
 * construction.
 *
 * @example
 * ```ts
 * const options: FileStoreOptions = { dir: '/var/lib/myapp/sessions', reapInterval: 600_000, lockTimeout: 2000 }
 * const store = new FileStore(options)
 * ```
 */
export interface FileStoreOptions {
  /** The directory that holds the sessions. Created (with mode 0700) if missing. */
  dir: string
  /** How often, in ms, expired sessions are deleted from disk. Default 300 000 (5 minutes). */
  reapInterval?: number
  /**
   * How many files the reaper (and `count`, `listByUser`, `clear`) works on at once. Default 16.
   */
  concurrency?: number
  /**
   * How long, in ms, a save waits for another process's lock before failing with a 503. Default
   * 5000.
   */
  lockTimeout?: number
  /**
   * The lock lease, in ms. A holder renews its lock while it works; a lock not renewed for this
   * long is broken, so a holder that died where its pid cannot be checked (another host name or
   * PID namespace) blocks its session for at most this long. A holder on this host and PID
   * namespace that died is seen at once. A holder that cannot renew in time (paused, or its event
   * loop blocked) gives its write up rather than apply it after its lease. Give every process on
   * one directory the same value. Default 3000.
   */
  staleLockTimeout?: number
  /**
   * fsync each session file before renaming it into place. Default true; false only for throwaway
   * data.
   */
  fsync?: boolean
}

/** Options after validation, with defaults filled in. */
export interface FileStoreSettings {
  dir: string
  reapInterval: number
  concurrency: number
  lockTimeout: number
  staleLockTimeout: number
  fsync: boolean
}

/** Checks `options` and fills in defaults; throws a TypeError that says what to pass. */
export function fileStoreSettings(options: FileStoreOptions): FileStoreSettings {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(
      "FileStore: pass an options object with a dir, e.g. new FileStore({ dir: './sessions' })",
    )
  }
  rejectUnknownKeys(
    'FileStore',
    options,
    ['dir', 'reapInterval', 'concurrency', 'lockTimeout', 'staleLockTimeout', 'fsync'],
    {
      ttl:
        "that is session-file-store's option; a session's lifetime follows its cookie here: " +
        'set session({ cookie: { maxAge } }), and idleTimeout for browser-session cookies',
      path: "that is session-file-store's option; pass the directory as dir",
      retries:
        "that is session-file-store's option; an unknown id is one failed open, never retried",
    },
  )
  const {
    dir,
    reapInterval = 300_000,
    concurrency = 16,
    lockTimeout = 5000,
    staleLockTimeout = 3000,
    fsync = true,
  } = options
  if (typeof dir !== 'string' || dir.length === 0 || dir.includes('\0')) {
    throw new TypeError(
      'FileStore: dir must be a non-empty path to the sessions directory, e.g. new FileStore({ ' +
        "dir: './sessions' })",
    )
  }
  positive('reapInterval', reapInterval)
  positive('lockTimeout', lockTimeout)
  positive('staleLockTimeout', staleLockTimeout)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
    throw new TypeError(
      `FileStore: concurrency must be an integer from 1 to 1024, got ${String(concurrency)}`,
    )
  }
  if (typeof fsync !== 'boolean') {
    throw new TypeError(`FileStore: fsync must be true or false, got ${String(fsync)}`)
  }
  return { dir, reapInterval, concurrency, lockTimeout, staleLockTimeout, fsync }
}

function positive(name: string, value: unknown): void {
  requirePositive('FileStore', name, value, 'ms')
}

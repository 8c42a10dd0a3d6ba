/** The jobs bench/lifecycle.ts hands to bench/lifecycle-child.ts, and what each prints back. */

export type TouchStore = 'file' | 'postgres' | 'pg-simple'

export interface TouchJob {
  type: 'touch'
  store: TouchStore
  /** Reads measured per setup, split over `rounds`. */
  reads: number
  rounds: number
  warmup: number
  /** Time between two reads on the session's clock. */
  spacingMs: number
  touchAfterMs: number
  /** For the FileStore: a directory of its own. */
  dir?: string
  pgUrl?: string
  pgSchema?: string
}

export interface ObserverJob {
  type: 'tracing' | 'events'
  /** Operations per round per setup. */
  requests: number
  rounds: number
  warmup: number
}

/** How sessions are kept at rest: `hashIds: false`, the default hashed ids, or `encrypt` too. */
export type AtRestMode = 'raw' | 'hashed' | 'encrypted'

export interface AtRestJob {
  type: 'at-rest'
  /** Operations per round per setup. */
  requests: number
  rounds: number
  warmup: number
}

export type LifecycleJob = TouchJob | ObserverJob | AtRestJob

export interface TouchVariant {
  /** `null`: no touchAfter, every read touches. */
  touchAfterMs: number | null
  reads: number
  /** Writes that reached the store over `reads`. */
  writes: number
  /** The same writes by what counted them: file system calls by name, or `n_tup_upd`. */
  writesBy: Record<string, number>
  /** CPU of this Node process per read, µs (user + sys, every thread): median over rounds. */
  nodeCpuUs: number
  /** CPU of the PostgreSQL backend serving the store per read, µs, over all reads (its clock
   * ticks are 10 ms, too coarse for a round); PostgreSQL only. */
  backendCpuUs?: number
  /**
   * Elapsed time per read, µs, one read at a time (median over rounds): includes waiting for
   * the disk or the database.
   */
  wallUs: number
  /** How far the stored expiry was behind the exact one after the last read, ms. */
  lagMs: number
}

export interface TouchResult {
  store: TouchStore
  variants: TouchVariant[]
}

export interface ObserverRow {
  workload: 'read' | 'write' | 'sign-in + sign-out'
  /** Median over rounds of CPU per operation without the observer, µs. */
  plainUs: number
  /** Likewise, with it. */
  observedUs: number
  /** Median over rounds of (with − without), each pair measured back to back. */
  diffUs: number
  /** Trace completions or events the observer received per operation: proof it was called. */
  seenPerOp: number
  opsPerRound: number
  rounds: number
}

export interface AtRestRow {
  workload: 'read' | 'write'
  mode: AtRestMode
  /** Median over rounds of CPU per operation, µs. */
  us: number
  /**
   * Median over rounds of (this mode − the mode before it), µs: hashed against raw, encrypted
   * against hashed; `null` for raw.
   */
  diffUs: number | null
  /** Share of the pool's sessions found stored as the mode says, checked in the store. */
  storedAsSaid: number
  opsPerRound: number
  rounds: number
}

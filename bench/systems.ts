/**
 * The systems the bench compares: one Express cart app, each time behind a different session
 * middleware and store. Shared by the orchestrator (what to start, what to compare with what)
 * and the server child (what to build).
 */
export type SystemId =
  | 'bare'
  | 'limit'
  | 'concord-memory'
  | 'concord-redis'
  | 'concord-redis-node'
  | 'concord-file'
  | 'concord-postgres'
  | 'concord-layered'
  | 'es-memory'
  | 'es-memorystore'
  | 'es-connect-redis'
  | 'es-file-store'
  | 'es-pg-simple'

export interface System {
  id: SystemId
  label: string
  family: 'bare' | 'limit' | 'concord' | 'express-session'
  /** What the server needs from the orchestrator. */
  needs: 'nothing' | 'redis' | 'dir' | 'postgres' | 'redis+postgres'
  /** The express-session setup a concord system replaces, for the "vs express-session" ratio. */
  peer?: SystemId
  /**
   * Systems compared with each other run back to back within a round, so a ratio is taken
   * between measurements seconds apart (bare sits with the memory stores it is compared with).
   */
  group: 'memory' | 'redis' | 'file' | 'postgres'
}

export const SYSTEMS: readonly System[] = [
  {
    id: 'bare',
    label: 'Express, no sessions (ceiling)',
    family: 'bare',
    needs: 'nothing',
    group: 'memory',
  },
  {
    id: 'limit',
    label: 'Minimal correct session middleware (yardstick)',
    family: 'limit',
    needs: 'nothing',
    group: 'memory',
  },
  {
    id: 'concord-memory',
    label: 'concord-session + MemoryStore',
    family: 'concord',
    needs: 'nothing',
    peer: 'es-memory',
    group: 'memory',
  },
  {
    id: 'concord-redis',
    label: 'concord-session + RedisStore (ioredis)',
    family: 'concord',
    needs: 'redis',
    peer: 'es-connect-redis',
    group: 'redis',
  },
  {
    id: 'concord-redis-node',
    label: 'concord-session + RedisStore (node-redis)',
    family: 'concord',
    needs: 'redis',
    peer: 'es-connect-redis',
    group: 'redis',
  },
  {
    id: 'concord-file',
    label: 'concord-session + FileStore',
    family: 'concord',
    needs: 'dir',
    peer: 'es-file-store',
    group: 'file',
  },
  {
    id: 'concord-postgres',
    label: 'concord-session + PostgresStore',
    family: 'concord',
    needs: 'postgres',
    peer: 'es-pg-simple',
    group: 'postgres',
  },
  {
    // Compared with concord-redis (same group): a read served by the hot layer should cost
    // what a read from Redis alone costs.
    id: 'concord-layered',
    label: 'concord-session + LayeredStore (Redis over PostgreSQL)',
    family: 'concord',
    needs: 'redis+postgres',
    group: 'redis',
  },
  {
    id: 'es-memory',
    label: 'express-session + MemoryStore',
    family: 'express-session',
    needs: 'nothing',
    group: 'memory',
  },
  {
    id: 'es-memorystore',
    label: 'express-session + memorystore',
    family: 'express-session',
    needs: 'nothing',
    group: 'memory',
  },
  {
    id: 'es-connect-redis',
    label: 'express-session + connect-redis (node-redis)',
    family: 'express-session',
    needs: 'redis',
    group: 'redis',
  },
  {
    id: 'es-file-store',
    label: 'express-session + session-file-store',
    family: 'express-session',
    needs: 'dir',
    group: 'file',
  },
  {
    id: 'es-pg-simple',
    label: 'express-session + connect-pg-simple',
    family: 'express-session',
    needs: 'postgres',
    group: 'postgres',
  },
]

/** Whether a system's store talks to the bench's redis-server. */
export function needsRedis(system: System): boolean {
  return system.needs === 'redis' || system.needs === 'redis+postgres'
}

/** Whether a system's store talks to PostgreSQL (in a schema of the run's own). */
export function needsPostgres(system: System): boolean {
  return system.needs === 'postgres' || system.needs === 'redis+postgres'
}

export function systemById(id: string): System {
  const system = SYSTEMS.find((s) => s.id === id)
  if (!system)
    throw new Error(
      `bench: unknown system ${JSON.stringify(id)}; known: ${SYSTEMS.map((s) => s.id).join(', ')}`,
    )
  return system
}

/** The secret every system signs its cookie with. */
export const SECRET = 'concord-bench-secret'
/** Every system gives sessions the same one-day cookie, so every store keeps the same TTL. */
export const MAX_AGE_MS = 86_400_000

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
  | 'es-memory'
  | 'es-memorystore'
  | 'es-connect-redis'
  | 'es-file-store'

export interface System {
  id: SystemId
  label: string
  family: 'bare' | 'limit' | 'concord' | 'express-session'
  /** What the server needs from the orchestrator. */
  needs: 'nothing' | 'redis' | 'dir'
  /** The express-session setup a concord system replaces, for the "vs express-session" ratio. */
  peer?: SystemId
  /**
   * Systems compared with each other run back to back within a round, so a ratio is taken
   * between measurements seconds apart (bare sits with the memory stores it is compared with).
   */
  group: 'memory' | 'redis' | 'file'
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
]

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

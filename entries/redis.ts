/**
 * `concord-session/redis`: the Redis store, for ioredis or node-redis v5 (both optional peer
 * dependencies; the store imports only their types). The store is in stores/redis/: the client
 * adapters, the Lua scripts, the record codec and the connect-redis reader each in a file of
 * their own.
 */
export { RedisStore } from '../stores/redis/store.js'
export type {
  IoredisClient,
  NodeRedisClient,
  NodeRedisCluster,
  RedisClient,
} from '../stores/redis/client.js'
export type { RedisStoreOptions } from '../stores/redis/options.js'

/**
 * `concord-session/postgres`: the PostgreSQL store. node-postgres (`pg`) is an optional peer
 * dependency; only this entry needs it, and it imports only its types.
 */
export { PostgresStore, type PostgresStoreOptions } from '../stores/postgres/store.js'

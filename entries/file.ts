/**
 * concord-session/file: one JSON file per session, safe for several processes on one host.
 * The store is in stores/file/: the format, the lock, the per-user index and the reaper each in a
 * file of their own.
 */
export { FileStore } from '../stores/file/store.js'
export type { FileStoreOptions } from '../stores/file/options.js'

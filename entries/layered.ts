/**
 * `concord-session/layered`: a fast hot store in front of a durable cold one.
 */
export { LayeredStore } from '../stores/layered.js'
export type { LayeredStoreOptions } from '../stores/layered-options.js'

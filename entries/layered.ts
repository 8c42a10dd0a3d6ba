/**
 * `concord-session/layered`: a fast hot store in front of a durable cold one.
 */
export { LayeredStore, type LayeredStoreOptions } from '../stores/layered.js'

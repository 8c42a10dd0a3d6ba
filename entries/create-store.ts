/**
 * `concord-session/create-store`: a store chosen by configuration, from a URL.
 */
export { createStore, redact, type CreatedStore, type LayeredSpec } from '../stores/create-store.js'

/**
 * The shared Store conformance suite and the middleware's concurrency suite, run against
 * express-session stores through adaptLegacyStore, where the guarantee holds: stores whose
 * expiry is exact to the millisecond (or that leave expiry to the adapter). Redis, memorystore
 * and session-file-store have their own files; connect-redis's whole-second TTL is why it runs
 * the middleware suite but not this one (see the README's "Switching from express-session").
 */
import { adaptLegacyStore, MemoryStore } from '../../entries/express-session.js'
import { describeMiddlewareOverStore } from '../middleware-store-suite.js'
import { describeStore } from '../store-conformance.js'
import { NoTouchStore } from './support/fakes.js'
import { expressSession } from './support/modules.js'

// An express-session store cannot renew ids (session({ renew }) refuses it at setup), and
// keeps no per-key expiries.
const legacy = { renewable: false, keyExpiry: false }
describeStore('adapted compat MemoryStore', async () => adaptLegacyStore(new MemoryStore()), legacy)
describeStore(
  "adapted express-session's own MemoryStore",
  async () => adaptLegacyStore(new expressSession.MemoryStore()),
  legacy,
)
describeStore(
  'adapted NoTouchStore (expiry kept by the adapter)',
  async () => adaptLegacyStore(new NoTouchStore()),
  legacy,
)

describeMiddlewareOverStore('adapted compat MemoryStore', async () =>
  adaptLegacyStore(new MemoryStore()),
)
describeMiddlewareOverStore("adapted express-session's own MemoryStore", async () =>
  adaptLegacyStore(new expressSession.MemoryStore()),
)

import { MemoryStore } from '../../stores/memory/store'
import { describeMiddlewareOverStore } from '../middleware-store-suite'

describeMiddlewareOverStore('MemoryStore', async () => new MemoryStore())
describeMiddlewareOverStore('MemoryStore', async () => new MemoryStore(), {
  maxSessionsPerUser: 3,
  touchAfter: 60_000,
})
describeMiddlewareOverStore('MemoryStore', async () => new MemoryStore(), { observed: true })
describeMiddlewareOverStore('MemoryStore', async () => new MemoryStore(), {
  renew: { afterRequests: 50 },
})

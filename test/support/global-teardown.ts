export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __concordRedis?: { stop(): Promise<void> } }).__concordRedis?.stop()
}

/** Reading the shop's server-rendered pages in HTTP-level tests. */

/** The trimmed text of the first element with this data-testid, or undefined if there is none. */
export function testIdText(html: string, testId: string): string | undefined {
  const match = new RegExp(`data-testid="${testId}"[^>]*>([^<]*)<`).exec(html)
  return match?.[1]?.trim()
}

/** The page's header (the markup from `<header` to `</header>`); throws if it has none. */
export function headerOf(html: string): string {
  const match = /<header[\s\S]*?<\/header>/.exec(html)
  if (!match) throw new Error(`no <header> in the page: ${html.slice(0, 200)}`)
  return match[0]
}

/**
 * Whether a page fits its screen: no sideways scrolling, nothing in the page's content cut off
 * at the screen's edges (a box that hides its overflow would not scroll, but it would clip), and
 * the header's pieces (brand, links, the signed-in name, "Sign out") each whole, on-screen and
 * clear of one another.
 */
import type { Page } from 'playwright-core'

/** What a layout check measured, so a failure says what is wrong and where. */
export interface LayoutReport {
  /** The screen width the page must fit. */
  viewport: number
  /** document.documentElement.scrollWidth: more than `viewport` means a horizontal scroll bar. */
  scrollWidth: number
  /** The header's pieces, by label, with their boxes in CSS pixels relative to the viewport. */
  header: {
    label: string
    left: number
    right: number
    top: number
    bottom: number
    clipped: boolean
  }[]
  /** Elements of the content (main and footer) that reach past the screen's left or right edge. */
  outside: string[]
  /** One line per problem found; empty when the page fits. */
  problems: string[]
}

// The DOM as far as the function run in the page uses it (the project's TypeScript lib has no DOM).
interface Box {
  left: number
  right: number
  top: number
  bottom: number
}
interface Element {
  textContent: string | null
  tagName: string
  className: string
  parentElement: Element | null
  scrollWidth: number
  clientWidth: number
  scrollHeight: number
  clientHeight: number
  getBoundingClientRect(): Box
}
declare const document: {
  documentElement: { scrollWidth: number }
  querySelector(selector: string): Element | null
  querySelectorAll(selector: string): ArrayLike<Element>
}

/** The pieces of the header that must be whole and on-screen. */
const HEADER_PARTS = '.top .brand, .top nav a, .top .who > span, .top .who a, .top .who button'

/**
 * Measures the page as it is now against the screen's width (`viewport`, in CSS pixels); see
 * {@link LayoutReport}. The width is given rather than read from the page, because a mobile
 * browser widens its layout viewport to fit content that overflows.
 *
 * @example
 * ```ts
 * expect((await checkLayout(page, 390)).problems).toEqual([])
 * ```
 */
export async function checkLayout(page: Page, viewport: number): Promise<LayoutReport> {
  const measured = await page.evaluate(
    ([selector, width]) => {
      const bar = document.querySelector('.top')!.getBoundingClientRect()
      const header = Array.from(document.querySelectorAll(selector)).map((el) => {
        const box = el.getBoundingClientRect()
        // Clipped: its content is wider or taller than its box (overflow hidden, ellipsis), or it
        // pokes out of the header bar.
        const clipped =
          el.scrollWidth > el.clientWidth + 1 ||
          el.scrollHeight > el.clientHeight + 1 ||
          box.top < bar.top - 0.5 ||
          box.bottom > bar.bottom + 0.5
        return {
          label: (el.textContent ?? '').replace(/\s+/g, ' ').trim(),
          left: box.left,
          right: box.right,
          top: box.top,
          bottom: box.bottom,
          clipped,
        }
      })
      // Content boxes past the edges, except inside a visually hidden box (a 1 px screen-reader
      // label). No named functions in here: a transpiler may wrap them in helpers the page lacks.
      const outside = Array.from(document.querySelectorAll('main *, footer *'))
        .filter((el) => {
          const box = el.getBoundingClientRect()
          if (box.right <= box.left || (box.left >= -0.5 && box.right <= width + 0.5)) return false
          for (let up: Element | null = el; up; up = up.parentElement) {
            const around = up.getBoundingClientRect()
            if (around.right - around.left <= 1) return false
          }
          return true
        })
        .map(
          (el) =>
            `${el.tagName.toLowerCase()}.${el.className} "${(el.textContent ?? '').replace(/\s+/g, ' ').trim().slice(0, 30)}"`,
        )
      return { scrollWidth: document.documentElement.scrollWidth, header, outside }
    },
    [HEADER_PARTS, viewport] as const,
  )

  const problems: string[] = []
  if (measured.header.length === 0) problems.push('the header has none of its pieces')
  if (measured.scrollWidth > viewport) {
    problems.push(`the page is ${measured.scrollWidth} px wide in a ${viewport} px viewport`)
  }
  for (const element of measured.outside) problems.push(`${element} reaches past the screen's edge`)
  for (const part of measured.header) {
    if (part.left < 0 || part.right > viewport + 0.5) {
      problems.push(
        `"${part.label}" spans x ${Math.round(part.left)}..${Math.round(part.right)}, outside 0..${viewport}`,
      )
    }
    if (part.clipped) problems.push(`"${part.label}" is clipped`)
  }
  measured.header.forEach((a, i) => {
    for (const b of measured.header.slice(i + 1)) {
      const overlap =
        a.left < b.right - 0.5 &&
        b.left < a.right - 0.5 &&
        a.top < b.bottom - 0.5 &&
        b.top < a.bottom - 0.5
      if (overlap) problems.push(`"${a.label}" and "${b.label}" overlap`)
    }
  })
  return { viewport, ...measured, problems }
}

/** The shop's products. Prices are integer cents, so totals never meet floating-point error. */
export interface Product {
  id: string
  name: string
  description: string
  price: number
  /** Two letters and a colour for the product tile (no images to ship). */
  badge: string
  color: string
}

export const PRODUCTS: readonly Product[] = Object.freeze([
  {
    id: 'sencha',
    name: 'Sencha green tea',
    description: 'Loose leaf, 100 g',
    price: 850,
    badge: 'Se',
    color: '#6a994e',
  },
  {
    id: 'espresso',
    name: 'House espresso beans',
    description: 'Whole bean, 250 g',
    price: 1200,
    badge: 'Es',
    color: '#7f5539',
  },
  {
    id: 'mug',
    name: 'Stoneware mug',
    description: 'Glazed, 350 ml',
    price: 1400,
    badge: 'Mu',
    color: '#457b9d',
  },
  {
    id: 'dripper',
    name: 'Pour-over dripper',
    description: 'Ceramic, size 02',
    price: 2200,
    badge: 'Dr',
    color: '#e76f51',
  },
  {
    id: 'filters',
    name: 'Paper filters',
    description: 'Pack of 100',
    price: 450,
    badge: 'Fi',
    color: '#b5838d',
  },
  {
    id: 'honey',
    name: 'Wildflower honey',
    description: 'Jar, 340 g',
    price: 975,
    badge: 'Ho',
    color: '#e9c46a',
  },
])

const BY_ID = new Map(PRODUCTS.map((p) => [p.id, p]))

/** The product with this id, or undefined. A Map, so ids like "__proto__" find nothing. */
export function findProduct(id: unknown): Product | undefined {
  return typeof id === 'string' ? BY_ID.get(id) : undefined
}

const USD = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' })

/** 1234 -> "$12.34" */
export function formatPrice(cents: number): string {
  return USD.format(cents / 100)
}

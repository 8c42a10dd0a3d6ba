/**
 * The PostgreSQL store's identifiers: each is checked against a strict pattern and then
 * double-quoted, so no caller-supplied text ever reaches a statement unquoted.
 */

/** A name PostgreSQL accepts unquoted, of at most 63 bytes (NAMEDATALEN - 1). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * `"name"` after checking it; throws a TypeError saying what is allowed.
 *
 * @example
 * ```ts
 * quoteIdentifier('sessions', 'table') // '"sessions"'
 * ```
 */
export function quoteIdentifier(name: unknown, what: string): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || Buffer.byteLength(name) > 63) {
    throw new TypeError(
      `PostgresStore: ${what} must be a plain SQL identifier (letters, digits and _, ` +
        `not starting with a digit, at most 63 characters), got ${JSON.stringify(name)}`,
    )
  }
  return `"${name}"`
}

/**
 * The tables of one store, each quoted and schema-qualified (or found through search_path).
 *
 * @example
 * ```ts
 * const names: TableNames = tableNames('concord_sessions', 'app', undefined)
 * ```
 */
export interface TableNames {
  /** The concord table, e.g. `"app"."concord_sessions"`. */
  table: string
  /** The quoted schema, when one was given (created with the table). */
  schema?: string
  /** The unquoted table name, the base of its index names. */
  bare: string
  /** connect-pg-simple's table, when migrating from it. */
  legacy?: string
}

/**
 * Checks and quotes the names. `legacyTable` is `'session'` (in `schema`, or on search_path)
 * or `'otherschema.session'`.
 *
 * @example
 * ```ts
 * tableNames('concord_sessions', 'app', 'public.session').legacy // '"public"."session"'
 * ```
 */
export function tableNames(table: unknown, schema: unknown, legacyTable: unknown): TableNames {
  const quotedSchema = schema === undefined ? undefined : quoteIdentifier(schema, 'schema')
  const qualify = (name: string) => (quotedSchema === undefined ? name : `${quotedSchema}.${name}`)
  const names: TableNames = {
    table: qualify(quoteIdentifier(table, 'table')),
    bare: table as string,
  }
  if (quotedSchema !== undefined) names.schema = quotedSchema
  // The index names add up to 12 characters to the table's and must fit in 63 too.
  quoteIdentifier(`${table as string}_expires_at`, 'table (plus "_expires_at", its index name)')
  if (legacyTable !== undefined) {
    const parts = typeof legacyTable === 'string' ? legacyTable.split('.') : [legacyTable]
    if (parts.length > 2)
      throw new TypeError(
        "PostgresStore: legacyTable must be 'table' or 'schema.table', " +
          `got ${JSON.stringify(legacyTable)}`,
      )
    // Checked in order, schema first, so the first bad part is the one reported.
    const quoted = parts
      .map((part, i) =>
        quoteIdentifier(part, i < parts.length - 1 ? 'legacyTable schema' : 'legacyTable'),
      )
      .join('.')
    names.legacy = parts.length === 2 ? quoted : qualify(quoted)
  }
  return names
}

/**
 * The StoreError a file system failure becomes: it names the directory and says the cause in words.
 */
import { StoreError } from '../../lib/store.js'

/** Wraps `err` (a StoreError passes through) as the 503 for `what` in `dir`. */
export function storeError(dir: string, what: string, err: unknown): StoreError {
  if (err instanceof StoreError) return err
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  const why = (code && REASONS[code]) ?? (err instanceof Error ? err.message : String(err))
  return new StoreError(`FileStore: could not ${what} in ${dir}: ${why}`, {
    cause: err,
    code: code === 'ENOSPC' || code === 'EDQUOT' ? 'EFULL' : 'ESTORE',
  })
}

const REASONS: Record<string, string> = {
  ENOENT: 'the directory is missing and could not be made (ENOENT)',
  ENOTDIR: 'a part of the path is not a directory (ENOTDIR)',
  EROFS: 'the file system is read-only (EROFS)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'operation not permitted (EPERM)',
  ENOSPC: 'no space left on the device (ENOSPC)',
  EDQUOT: 'disk quota exceeded (EDQUOT)',
  EMFILE: 'too many open files in this process (EMFILE)',
  ENFILE: 'too many open files on this system (ENFILE)',
  EIO: 'input/output error (EIO)',
}

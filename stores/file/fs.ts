/**
 * File system plumbing for the file store: promise wrappers over the callback API on the hot paths,
 * and small helpers that treat "not there" as an answer rather than an error.
 */
import type { Dir, Stats } from 'node:fs'
import * as fs from 'node:fs'
import { lstat, mkdir, readdir, rmdir, stat, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { isCode } from '../../lib/store-errors.js'

export { isCode }

// The callback API costs about half of fs/promises' FileHandle per call (no FileHandle object,
// no close tracking); these wrappers are the only promises made per system call.

export function ignore(): void {}

export function fsOpen(path: string, flags: string, mode = 0o666): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd))),
  )
}

export function fsFstat(fd: number): Promise<Stats> {
  return new Promise((resolve, reject) =>
    fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st))),
  )
}

export function fsStat(path: string): Promise<Stats> {
  return new Promise((resolve, reject) =>
    fs.stat(path, (err, st) => (err ? reject(err) : resolve(st))),
  )
}

export function fsRead(
  fd: number,
  buf: Buffer,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))),
  )
}

function fsWrite(fd: number, buf: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.write(fd, buf, offset, buf.length - offset, null, (err, n) =>
      err ? reject(err) : resolve(n),
    ),
  )
}

export async function fsWriteAll(fd: number, buf: Buffer): Promise<void> {
  for (let done = 0; done < buf.length;) done += await fsWrite(fd, buf, done)
}

export function fsFutimes(fd: number, atime: number, mtime: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.futimes(fd, atime, mtime, (err) => (err ? reject(err) : resolve())),
  )
}

export function fsLutimes(path: string, atime: number, mtime: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.lutimes(path, atime, mtime, (err) => (err ? reject(err) : resolve())),
  )
}

export function fsFsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())))
}

export function fsClose(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())))
}

export function fsSymlink(target: string, path: string): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.symlink(target, path, (err) => (err ? reject(err) : resolve())),
  )
}

export function fsReadlink(path: string): Promise<string> {
  return new Promise((resolve, reject) =>
    fs.readlink(path, (err, text) => (err ? reject(err) : resolve(text))),
  )
}

export function fsUnlink(path: string): Promise<void> {
  return new Promise((resolve, reject) => fs.unlink(path, (err) => (err ? reject(err) : resolve())))
}

export function fsRename(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.rename(from, to, (err) => (err ? reject(err) : resolve())),
  )
}

/**
 * Runs `fn` on each item with at most `limit` in flight. An async iterator is pulled by the workers
 * in turn.
 */
export async function forEachLimited<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  const it: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in items
      ? (items as AsyncIterable<T>)[Symbol.asyncIterator]()
      : (items as Iterable<T>)[Symbol.iterator]()
  let failed = false
  let failure: unknown
  const worker = async (): Promise<void> => {
    while (!failed) {
      const next = await it.next()
      if (next.done) return
      try {
        await fn(next.value)
      } catch (err) {
        if (!failed) failure = err
        failed = true
      }
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
  if (failed) {
    await it.return?.() // closes a directory stream that was not read to the end
    throw failure
  }
}

/**
 * Streams a directory's entries (memory stays flat however many there are); nothing if it is
 * missing.
 */
export async function openDirOrNull(path: string): Promise<Dir | null> {
  try {
    return await fs.promises.opendir(path, { bufferSize: 64 })
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null
    throw err
  }
}

/**
 * mkdir -p, by hand: Node's recursive mkdir reports ENOENT where the real cause is EROFS or
 * EACCES, and the 503's message should say which.
 */
export async function makeDir(path: string): Promise<void> {
  try {
    await mkdir(path, { mode: 0o700 })
  } catch (err) {
    if (isCode(err, 'EEXIST')) return
    if (!isCode(err, 'ENOENT') || dirname(path) === path) throw err
    await makeDir(dirname(path))
    await makeDir(path)
  }
}

export async function readdirOrEmpty(path: string): Promise<string[]> {
  try {
    return await readdir(path)
  } catch (err) {
    if (isCode(err, 'ENOENT')) return []
    throw err
  }
}

export async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path)
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null
    throw err
  }
}

export async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await stat(path)
  } catch (err) {
    if (isCode(err, 'ENOENT')) return null
    throw err
  }
}

export async function unlinkQuiet(path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if (!isCode(err, 'ENOENT')) throw err
  }
}

/** Removes a directory if it is empty; a directory still in use stays. */
export async function rmdirQuiet(path: string): Promise<void> {
  try {
    await rmdir(path)
  } catch (err) {
    if (!isCode(err, 'ENOENT') && !isCode(err, 'ENOTEMPTY') && !isCode(err, 'EEXIST')) throw err
  }
}

export { sleep } from '../../lib/util.js'

// Shared koffi plumbing: lazy library loading and common C types/constants.
import koffi from 'koffi';

export { koffi };

export const CS_DISPATCH_ALL = 2;
export const CS_TRACK_CURRENT = 0x01;
export const CS_TRACK_CHANGES = 0x02;

// Handles are uint64_t (passed as bigint); cs_error_t is an int-sized enum.
export const cs_error_t = koffi.alias('cs_error_t', 'int');

export type Lib = ReturnType<typeof koffi.load>;

/** Loads a shared library, turning dlopen failures into a readable message. */
export function loadLib(soname: string): Lib {
  try {
    return koffi.load(soname);
  } catch (err) {
    throw new Error(`cannot load ${soname} (is corosync installed?): ${(err as Error).message}`);
  }
}

/** Memoizes a binding factory so libraries are only dlopen'ed on first use. */
export function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/** Copies foreign memory into a fresh Buffer (the pointer is only valid during the callback). */
export function copyBytes(ptr: unknown, len: number): Buffer {
  if (!ptr || len <= 0) return Buffer.alloc(0);
  return Buffer.from(new Uint8Array(koffi.view(ptr, len)));
}

/** Decodes `count` items of `type` at `ptr`; returns [] for empty/null arrays. */
export function decodeArray<T>(ptr: unknown, type: string | koffi.IKoffiCType, count: number): T[] {
  if (!ptr || count <= 0) return [];
  return Array.from(koffi.decode(ptr, type, count) as ArrayLike<T>);
}

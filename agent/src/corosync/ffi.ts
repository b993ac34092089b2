// Shared koffi plumbing: lazy library loading and common C types/constants.
import koffi from 'koffi';

export { koffi };

export const CS_DISPATCH_ALL = 2;
export const CS_TRACK_CURRENT = 0x01;
export const CS_TRACK_CHANGES = 0x02;

// Handles are uint64_t (passed as bigint); cs_error_t is an int-sized enum.
export const cs_error_t = koffi.alias('cs_error_t', 'int');

export type Lib = ReturnType<typeof koffi.load>;

// cpg/cmap/votequorum_dispatch() keep a 1 MiB IPC buffer (IPC_DISPATCH_SIZE) on the stack, and
// koffi runs synchronous calls on its own stack, 1 MiB by default: that overflows (segfault).
// koffi only accepts a new size before the first library is loaded, so try as early as possible.
const SYNC_STACK_BYTES = 8 * 1024 * 1024;

function ensureSyncStack(): string | null {
  const have = koffi.config().sync_stack_size ?? 0;
  if (have >= SYNC_STACK_BYTES) return null;
  try {
    koffi.config({ sync_stack_size: SYNC_STACK_BYTES });
    return null;
  } catch (err) {
    return `koffi sync_stack_size is ${have} bytes but corosync dispatch needs ${SYNC_STACK_BYTES}; ` +
      `import agent/src/corosync before anything else loads a library with koffi (${(err as Error).message})`;
  }
}
ensureSyncStack();

/** Loads a shared library, turning dlopen failures into a readable message. */
export function loadLib(soname: string): Lib {
  const stackProblem = ensureSyncStack();
  if (stackProblem) throw new Error(stackProblem);
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

// libcmap (cmap.h): key/value configuration database, prefix iteration and change tracking.
import { CS_ERR, check } from './errors.ts';
import { CS_DISPATCH_ALL, koffi, lazy, loadLib } from './ffi.ts';
import { type CmapValue, decodeCmapValue } from './parse.ts';

const CMAP_KEYNAME_MAXLEN = 255;
export const CMAP_TRACK_DELETE = 1;
export const CMAP_TRACK_MODIFY = 2;
export const CMAP_TRACK_ADD = 4;
export const CMAP_TRACK_PREFIX = 8;

koffi.struct('cmap_notify_value', { type: 'int', len: 'size_t', data: 'const void *' });
export const CmapNotifyFn = koffi.proto(
  'void cmap_notify_fn_t(uint64_t cmap_handle, uint64_t cmap_track_handle, int32_t event, const char *key_name, cmap_notify_value new_value, cmap_notify_value old_value, void *user_data)',
);

const lib = lazy(() => {
  const l = loadLib('libcmap.so.4');
  return {
    initialize: l.func('cs_error_t cmap_initialize(_Out_ uint64_t *handle)'),
    finalize: l.func('cs_error_t cmap_finalize(uint64_t handle)'),
    fd_get: l.func('cs_error_t cmap_fd_get(uint64_t handle, _Out_ int *fd)'),
    dispatch: l.func('cs_error_t cmap_dispatch(uint64_t handle, int dispatch_types)'),
    get: l.func('cs_error_t cmap_get(uint64_t handle, const char *key_name, void *value, _Inout_ size_t *value_len, _Out_ int *type)'),
    iter_init: l.func('cs_error_t cmap_iter_init(uint64_t handle, const char *prefix, _Out_ uint64_t *iter_handle)'),
    iter_next: l.func(
      'cs_error_t cmap_iter_next(uint64_t handle, uint64_t iter_handle, void *key_name, _Out_ size_t *value_len, _Out_ int *type)',
    ),
    iter_finalize: l.func('cs_error_t cmap_iter_finalize(uint64_t handle, uint64_t iter_handle)'),
    track_add: l.func(
      'cs_error_t cmap_track_add(uint64_t handle, const char *key_name, int32_t track_type, cmap_notify_fn_t *notify_fn, void *user_data, _Out_ uint64_t *track_handle)',
    ),
  };
});

export type CmapNotify = (handle: bigint, event: number, key: string) => void;

/** Raw-signature adapter; the values are ignored because callers re-read the keys they need. */
export function cmapNotifyAdapter(fn: CmapNotify) {
  return (h: number | bigint, _track: unknown, event: number, key: string) => fn(BigInt(h), event, key);
}

export const cmap = {
  initialize(): bigint {
    const h = [0n];
    check('cmap_initialize', lib().initialize(h));
    return BigInt(h[0]!);
  },
  finalize: (h: bigint) => lib().finalize(h) as number,
  fdGet(h: bigint): number {
    const fd = [0];
    check('cmap_fd_get', lib().fd_get(h, fd));
    return fd[0]!;
  },
  dispatch: (h: bigint) => lib().dispatch(h, CS_DISPATCH_ALL) as number,

  /** Reads one key; undefined when it does not exist. */
  get(h: bigint, key: string): CmapValue | undefined {
    for (let attempt = 0; ; attempt++) {
      const len = [0];
      const type = [0];
      let rc = lib().get(h, key, null, len, type);
      if (rc === CS_ERR.NOT_EXIST) return undefined;
      check('cmap_get', rc);
      const buf = Buffer.alloc(Math.max(1, Number(len[0])));
      len[0] = buf.length;
      rc = lib().get(h, key, buf, len, type);
      if (rc === CS_ERR.NOT_EXIST) return undefined;
      // The value grew between the two calls: ask for the new length once more.
      if (rc === CS_ERR.INVALID_PARAM && attempt < 3) continue;
      check('cmap_get', rc);
      return decodeCmapValue(type[0]!, buf.subarray(0, Number(len[0])));
    }
  },

  /** Reads every key under `prefix` (keys deleted mid-iteration are skipped). */
  getPrefix(h: bigint, prefix: string): Map<string, CmapValue> {
    const out = new Map<string, CmapValue>();
    const iter = [0n];
    check('cmap_iter_init', lib().iter_init(h, prefix, iter));
    const it = BigInt(iter[0]!);
    try {
      const keyBuf = Buffer.alloc(CMAP_KEYNAME_MAXLEN + 1);
      for (;;) {
        const len = [0];
        const type = [0];
        const rc = lib().iter_next(h, it, keyBuf, len, type);
        if (rc === CS_ERR.NO_SECTIONS) break;
        check('cmap_iter_next', rc);
        const key = keyBuf.toString('utf8', 0, keyBuf.indexOf(0));
        const value = cmap.get(h, key);
        if (value !== undefined) out.set(key, value);
      }
    } finally {
      lib().iter_finalize(h, it);
    }
    return out;
  },

  trackAdd(h: bigint, key: string, trackType: number, notify: unknown): bigint {
    const th = [0n];
    check('cmap_track_add', lib().track_add(h, key, trackType, notify, null, th));
    return BigInt(th[0]!);
  },
};

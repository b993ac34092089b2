// cs_error_t codes from corotypes.h, and the error type thrown by all wrappers.

export const CS_OK = 1;

const CS_ERROR_NAMES: Record<number, string> = {
  1: 'CS_OK',
  2: 'CS_ERR_LIBRARY',
  3: 'CS_ERR_VERSION',
  4: 'CS_ERR_INIT',
  5: 'CS_ERR_TIMEOUT',
  6: 'CS_ERR_TRY_AGAIN',
  7: 'CS_ERR_INVALID_PARAM',
  8: 'CS_ERR_NO_MEMORY',
  9: 'CS_ERR_BAD_HANDLE',
  10: 'CS_ERR_BUSY',
  11: 'CS_ERR_ACCESS',
  12: 'CS_ERR_NOT_EXIST',
  13: 'CS_ERR_NAME_TOO_LONG',
  14: 'CS_ERR_EXIST',
  15: 'CS_ERR_NO_SPACE',
  16: 'CS_ERR_INTERRUPT',
  17: 'CS_ERR_NAME_NOT_FOUND',
  18: 'CS_ERR_NO_RESOURCES',
  19: 'CS_ERR_NOT_SUPPORTED',
  20: 'CS_ERR_BAD_OPERATION',
  21: 'CS_ERR_FAILED_OPERATION',
  22: 'CS_ERR_MESSAGE_ERROR',
  23: 'CS_ERR_QUEUE_FULL',
  24: 'CS_ERR_QUEUE_NOT_AVAILABLE',
  25: 'CS_ERR_BAD_FLAGS',
  26: 'CS_ERR_TOO_BIG',
  27: 'CS_ERR_NO_SECTIONS',
  28: 'CS_ERR_CONTEXT_NOT_FOUND',
  30: 'CS_ERR_TOO_MANY_GROUPS',
  100: 'CS_ERR_SECURITY',
};

export const CS_ERR = {
  LIBRARY: 2,
  TRY_AGAIN: 6,
  INVALID_PARAM: 7,
  BAD_HANDLE: 9,
  NOT_EXIST: 12,
  NO_SECTIONS: 27,
} as const;

export function csErrorName(code: number): string {
  return CS_ERROR_NAMES[code] ?? `CS_ERR_UNKNOWN(${code})`;
}

export class CorosyncError extends Error {
  override readonly name = 'CorosyncError';
  constructor(
    readonly call: string,
    readonly code: number,
  ) {
    super(`${call} failed: ${csErrorName(code)}`);
  }
  get errorName(): string {
    return csErrorName(this.code);
  }
}

/** Throws a CorosyncError unless rc is CS_OK. */
export function check(call: string, rc: number): void {
  if (rc !== CS_OK) throw new CorosyncError(call, rc);
}

/** Errors that mean the IPC connection to corosync is gone (reconnect, don't retry). */
export function isConnectionLost(code: number): boolean {
  return code === CS_ERR.LIBRARY || code === CS_ERR.BAD_HANDLE;
}

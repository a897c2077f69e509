/**
 * The errors every reader throws about its input as a whole, worded the same way.
 *
 * @module
 */

import { ErrorCodes, MedsynError } from '../errors.js';

/** How an input is named in messages: `stdin` for `-`. */
export function inputName(name: string): string {
  return name === '-' ? 'stdin' : name;
}

/** `MEDSYN_ERR_NOT_FOUND` for an input that does not exist or cannot be opened. */
export function notFound(file: string, cause: unknown): MedsynError {
  const code = (cause as { code?: string } | undefined)?.code;
  const detail =
    code === 'ENOENT'
      ? 'no such file or directory (check the path)'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied (check who may read it)'
        : `${(cause as Error).message ?? String(cause)}`;
  return new MedsynError(ErrorCodes.NOT_FOUND, `Cannot open ${file}: ${detail}`, { file, cause });
}

/** `MEDSYN_ERR_READ_FAILED` for an input that fails after it was opened; a `MedsynError` passes through. */
export function readFailed(name: string, cause: unknown): MedsynError {
  if (cause instanceof MedsynError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new MedsynError(ErrorCodes.READ_FAILED, `Cannot read ${inputName(name)}: ${detail}`, { file: name, cause });
}

/** `MEDSYN_ERR_EMPTY_INPUT` for an input with no bytes. */
export function emptyInput(name: string): MedsynError {
  return new MedsynError(
    ErrorCodes.EMPTY_INPUT,
    `Cannot read reports from ${inputName(name)}: it is empty (is it the right ${name === '-' ? 'pipe' : 'file'}?)`,
    { file: name },
  );
}

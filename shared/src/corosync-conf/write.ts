import { CorosyncConfError } from './errors.ts';
import { assertWritableValue, isValidName, type ConfSection } from './tree.ts';

/**
 * Canonical corosync.conf text: tab indentation, `key: value`, a blank line between
 * top-level sections (the layout of Debian's shipped file). Comments are not kept.
 * Throws CorosyncConfError for anything that would not parse back to the same tree.
 */
export function writeCorosyncConf(root: ConfSection): string {
  const out: string[] = [];
  const emit = (sec: ConfSection, depth: number): void => {
    const indent = '\t'.repeat(depth);
    for (const entry of sec.entries) {
      if (entry.kind === 'value') {
        assertWritableValue(entry.key, entry.value);
        out.push(`${indent}${entry.key}:${entry.value === '' ? '' : ` ${entry.value}`}`);
        continue;
      }
      // A trailing ':' would be stripped by the parser (`totem: {` means `totem {`).
      if (!isValidName(entry.name) || entry.name.endsWith(':')) {
        throw new CorosyncConfError(`invalid section name ${JSON.stringify(entry.name)}`);
      }
      if (depth === 0 && out.length > 0) out.push('');
      out.push(`${indent}${entry.name} {`);
      emit(entry, depth + 1);
      out.push(`${indent}}`);
    }
  };
  emit(root, 0);
  for (const line of out) {
    if (Buffer.byteLength(line) > 510) throw new CorosyncConfError(`line too long for corosync (510 bytes max): ${line.slice(0, 60)}...`);
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

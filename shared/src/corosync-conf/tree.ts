import { CorosyncConfError } from './errors.ts';

/** A `key: value` line. The value is kept verbatim (trimmed, as corosync does). */
export interface ConfValue {
  kind: 'value';
  key: string;
  value: string;
}

/** A `name { ... }` block; the root of a file is a section named "". */
export interface ConfSection {
  kind: 'section';
  name: string;
  entries: ConfEntry[];
}

export type ConfEntry = ConfValue | ConfSection;

export interface SourcePos {
  line: number;
  column: number;
}

// Positions live beside the tree rather than in it, so two parses of equivalent
// text deep-equal each other and hand-built trees need no fake positions.
const positions = new WeakMap<ConfEntry, SourcePos>();

/** Where a parsed entry came from: a value's first character, or a section's name. */
export function positionOf(entry: ConfEntry): SourcePos | undefined {
  return positions.get(entry);
}

export function setPosition(entry: ConfEntry, pos: SourcePos | undefined): void {
  if (pos) positions.set(entry, pos);
}

export function section(name: string, entries: ConfEntry[] = []): ConfSection {
  return { kind: 'section', name, entries };
}

export function value(key: string, val: string | number | bigint): ConfValue {
  return { kind: 'value', key, value: String(val) };
}

/** Direct child sections called `name`, in file order. */
export function childSections(parent: ConfSection, name: string): ConfSection[] {
  return parent.entries.filter((e): e is ConfSection => e.kind === 'section' && e.name === name);
}

/** Last occurrence of each key: corosync lets a repeated key overwrite the earlier one. */
export function lastValues(...sections: ConfSection[]): Map<string, ConfValue> {
  const out = new Map<string, ConfValue>();
  for (const s of sections) for (const e of s.entries) if (e.kind === 'value') out.set(e.key, e);
  return out;
}

/** Copy of `sec` with new entries; keeps the source position for error reporting. */
export function withEntries(sec: ConfSection, entries: ConfEntry[]): ConfSection {
  const copy = section(sec.name, entries);
  setPosition(copy, positionOf(sec));
  return copy;
}

// Characters corosync's cmap accepts in key names (icmap_is_valid_name_char).
const NAME_RE = /^[A-Za-z0-9._/:-]+$/;

export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}

/** Throws unless `key: val` can be written so that it parses back identically. */
export function assertWritableValue(key: string, val: string): void {
  if (!isValidName(key) || key.includes(':')) {
    throw new CorosyncConfError(`invalid key name ${JSON.stringify(key)}: use only A-Z a-z 0-9 . _ / -`);
  }
  // '{' would turn the line into a section header; edge whitespace is trimmed on read.
  if (/[\r\n{]/.test(val) || val !== val.replace(/^[ \t]+|[ \t]+$/g, '')) {
    throw new CorosyncConfError(
      `value of ${key} cannot be written: ${JSON.stringify(val)} contains '{', a line break or leading/trailing whitespace`,
    );
  }
}

/** Set every occurrence of `key` to `val` (so the effective value changes), or append it. */
export function setKey(sec: ConfSection, key: string, val: string | number | bigint): ConfSection {
  const text = String(val);
  assertWritableValue(key, text);
  const found = sec.entries.some((e) => e.kind === 'value' && e.key === key);
  const entries = found
    ? sec.entries.map((e) => (e.kind === 'value' && e.key === key ? value(key, text) : e))
    : [...sec.entries, value(key, text)];
  return withEntries(sec, entries);
}

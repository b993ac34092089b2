import { CorosyncConfError } from './errors.ts';
import { isValidName, positionOf, section, setPosition, type ConfSection, type ConfValue } from './tree.ts';

// corosync reads lines with fgets(line, 512): 510 bytes plus "\n" (and the NUL) is the limit.
const MAX_LINE_BYTES = 510;

/**
 * Parse corosync.conf text the way corosync 3 (exec/coroparse.c) does, line by line:
 * a line containing '{' opens a section, else one containing ':' is `key: value`,
 * else it must be a lone '}'. Comments are whole lines starting with '#'; they are dropped.
 * Note `key = value` is not accepted by corosync 3, so it is an error here too.
 */
export function parseCorosyncConf(text: string): ConfSection {
  const root = section('');
  const open: ConfSection[] = [root];
  const lines = text.split('\n');

  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const fail = (reason: string, column: number): never => {
      throw new CorosyncConfError(reason, { line: lineNo, column });
    };
    if (Buffer.byteLength(raw) > MAX_LINE_BYTES) fail(`line is longer than ${MAX_LINE_BYTES} bytes`, 1);

    const line = raw.replace(/\r$/, '').replace(/[ \t]+$/, '');
    const start = line.search(/[^ \t]/);
    if (start === -1 || line[start] === '#') return;
    const parent = open[open.length - 1]!;

    // corosync tests for '{' first, so a value can never contain one.
    const brace = line.indexOf('{');
    if (brace !== -1) {
      const name = line.slice(start, brace).replace(/[ \t:]+$/, ''); // `totem: {` is accepted
      if (!name) fail("missing section name before '{'", brace + 1);
      const extra = line.slice(brace + 1).search(/[^ \t]/);
      if (extra !== -1) fail("unexpected characters after '{' (a section header must end the line)", brace + 2 + extra);
      checkName(name, 'section name', lineNo, start + 1);
      const sec = section(name);
      setPosition(sec, { line: lineNo, column: start + 1 });
      parent.entries.push(sec);
      open.push(sec);
      return;
    }

    const colon = line.indexOf(':');
    if (colon !== -1) {
      const key = line.slice(start, colon).replace(/[ \t]+$/, '');
      if (!key) fail("empty key before ':'", colon + 1);
      checkName(key, 'key', lineNo, start + 1);
      const rest = line.slice(colon + 1);
      const valueStart = Math.max(rest.search(/[^ \t]/), 0);
      const entry: ConfValue = { kind: 'value', key, value: rest.slice(valueStart) };
      setPosition(entry, { line: lineNo, column: colon + 2 + valueStart });
      parent.entries.push(entry);
      return;
    }

    if (line.includes('}')) {
      if (line.slice(start) !== '}') {
        const culprit = line[start] === '}' ? line.slice(start + 1).search(/[^ \t]/) + start + 1 : start;
        fail("unexpected characters around '}' (a closing brace must be alone on its line)", culprit + 1);
      }
      if (open.length === 1) fail("unexpected '}': no section is open", start + 1);
      open.pop();
      return;
    }

    fail("expected 'key: value', 'name {', '}' or a '#' comment", start + 1);
  });

  if (open.length > 1) {
    // Report the innermost open section, where it was opened (corosync only says "end of file").
    const path = open.slice(1).map((s) => s.name).join(' > ');
    throw new CorosyncConfError(`section '${path}' is never closed: missing '}' before end of file`, positionOf(open.at(-1)!));
  }
  return root;
}

function checkName(name: string, what: string, line: number, column: number): void {
  if (isValidName(name)) return;
  const bad = name.search(/[^A-Za-z0-9._/:-]/);
  throw new CorosyncConfError(
    `invalid character ${JSON.stringify(name[bad])} in ${what} ${JSON.stringify(name)} (corosync allows only A-Z a-z 0-9 . _ / - :)`,
    { line, column: column + bad },
  );
}

// The benches' command-line options: `--name value`, with a default when absent.
const raw = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};

export const argText = (name: string, dflt: string): string => raw(name) ?? dflt;

export const argNumber = (name: string, dflt: number): number => {
  const v = raw(name);
  return v === undefined ? dflt : Number(v);
};

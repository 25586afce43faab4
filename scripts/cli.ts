// Minimal argv parsing for the npm scripts: `--key value`, `--key=value`,
// `--flag` (true), `--no-flag` (false). Values stay strings; each script's zod
// schema coerces and validates them.
export function parseArgs(argv: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}' (options are --name value)`);
    const body = a.slice(2);
    const eq = body.indexOf('=');
    if (eq >= 0) out[body.slice(0, eq)] = body.slice(eq + 1);
    else if (body.startsWith('no-')) out[body.slice(3)] = false;
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[body] = argv[++i];
    else out[body] = true;
  }
  return out;
}

// The package's structure: no runtime import cycles among the compiled
// modules, the face model and the style worker load without the service stack
// (fastify, better-sqlite3, pg, the gallery server), and the addon exports
// exactly what binding.d.ts declares.
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../lib/util/paths';

const ROOT = packageRoot;
const DIST_LIB = path.join(ROOT, 'dist', 'lib');

function jsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...jsFiles(p));
    else if (e.name.endsWith('.js')) out.push(p);
  }
  return out;
}

/** The file a relative require() names, as Node resolves it (x, x.js, x/index.js). */
function resolveRelative(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec);
  for (const c of [base, `${base}.js`, path.join(base, 'index.js')]) if (fs.existsSync(c) && fs.statSync(c).isFile()) return c;
  return null;
}

/** Runtime import edges: tsc emits CommonJS and erases type-only imports, so each require("./...") is one. */
function requireGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const src = fs.readFileSync(f, 'utf8');
    const deps = new Set<string>();
    for (const m of src.matchAll(/\brequire\(\s*["'](\.{1,2}\/[^"']*)["']\s*\)/g)) {
      const target = resolveRelative(f, m[1]);
      if (target && target.endsWith('.js')) deps.add(target);
    }
    graph.set(f, [...deps]);
  }
  return graph;
}

/** Every cycle's strongly connected component (Tarjan), each with one concrete cycle through it. */
function findCycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  // One cycle per component: a breadth-first path from its first member back to itself, inside the component.
  return components.map((component) => {
    const inside = new Set(component);
    const start = component[0];
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (!inside.has(w)) continue;
        if (w === start) {
          const cycle = [start];
          for (let u = v; u !== start; u = previous.get(u)!) cycle.splice(1, 0, u);
          return [...cycle, start];
        }
        if (!previous.has(w)) {
          previous.set(w, v);
          queue.push(w);
        }
      }
    }
    return component;
  });
}

const SERVICE_STACK = [
  { name: 'fastify', test: /[\\/]node_modules[\\/]fastify[\\/]/ },
  { name: 'better-sqlite3', test: /[\\/]node_modules[\\/]better-sqlite3[\\/]/ },
  { name: 'pg', test: /[\\/]node_modules[\\/]pg[\\/]/ },
  { name: 'lib/gallery/server', test: /[\\/]lib[\\/]gallery[\\/]server\.js$/ },
];

interface LoadReport {
  modules: string[];
  tensorMethods: boolean;
}

/** Loads the given files in a fresh node process and returns require.cache's keys. */
function loadInChild(files: string[]): LoadReport {
  const script = `
for (const f of ${JSON.stringify(files)}) require(f);
const tensorJs = Object.keys(require.cache).find((k) => k === ${JSON.stringify(path.join(DIST_LIB, 'core', 'tensor.js'))});
const tensorMethods = !!tensorJs && ['add', 'sum', 'reshape', 'zero_'].every((m) => typeof require(tensorJs).Tensor.prototype[m] === 'function');
process.stdout.write('\\n@@REPORT@@' + JSON.stringify({ modules: Object.keys(require.cache), tensorMethods }) + '\\n');
`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('@@REPORT@@'));
  assert.ok(line, `the child process reported nothing (status ${r.status}, signal ${r.signal}): ${r.stderr}`);
  return JSON.parse(line.slice('@@REPORT@@'.length)) as LoadReport;
}

function checkNoServiceStack(what: string, report: LoadReport): void {
  const loaded = SERVICE_STACK.filter((s) => report.modules.some((m) => s.test.test(m))).map((s) => s.name);
  console.log(`      ${what}: ${report.modules.length} modules`);
  assert.deepEqual(loaded, [], `${what} loads the service stack: ${loaded.join(', ')}`);
}

describe('structure', () => {
  it('has no runtime import cycles among dist/lib/**/*.js', () => {
    const files = jsFiles(DIST_LIB);
    const graph = requireGraph(files);
    // The parser sees real edges (ops/dispatch.js requires core/tensor.js), so an empty result means something.
    assert.ok(graph.get(path.join(DIST_LIB, 'ops', 'dispatch.js'))?.includes(path.join(DIST_LIB, 'core', 'tensor.js')), 'expected the edge ops/dispatch.js -> core/tensor.js');
    const cycles = findCycles(graph);
    const rel = (f: string) => path.relative(DIST_LIB, f);
    assert.deepEqual(
      cycles.map((c) => c.map(rel).join(' -> ')),
      [],
      `runtime import cycles:\n${cycles.map((c) => '  ' + c.map(rel).join(' -> ')).join('\n')}`,
    );
  });

  it('folders depend on each other only downwards (core <- ops <- nn <- models <- face <- gallery)', () => {
    // What each folder of lib/ may load at run time (besides itself). Type-only imports are erased,
    // so they do not count. lib/index.ts, the package entry, may load everything.
    const ALLOWED: Record<string, string[]> = {
      util: [],
      core: ['util'],
      ops: ['core'],
      nn: ['core', 'ops'],
      optim: ['core', 'ops', 'io', 'util'],
      io: ['core', 'ops', 'nn', 'util'],
      image: ['core', 'ops', 'io'],
      models: ['core', 'ops', 'nn', 'io', 'image'],
      distributed: ['core', 'ops', 'nn', 'face', 'util'],
      face: ['core', 'ops', 'nn', 'optim', 'io', 'image', 'models', 'distributed', 'util'],
      style: ['core', 'ops', 'nn', 'optim', 'io', 'image', 'models', 'util'],
      library: ['core', 'ops', 'image', 'face', 'util'],
      gallery: ['core', 'ops', 'io', 'image', 'face', 'library', 'util'],
      testing: ['core', 'image', 'face'],
    };
    const files = jsFiles(DIST_LIB);
    const graph = requireGraph(files);
    const folder = (f: string) => path.relative(DIST_LIB, f).split(path.sep)[0];
    const wrong: string[] = [];
    for (const [from, tos] of graph) {
      const a = folder(from);
      if (a.endsWith('.js')) continue; // lib/index.js
      assert.ok(ALLOWED[a], `lib/${a}/ is a folder the layering rule does not know: add it to ALLOWED`);
      for (const to of tos) {
        const b = folder(to);
        if (b !== a && !ALLOWED[a].includes(b)) wrong.push(`${path.relative(DIST_LIB, from)} -> ${path.relative(DIST_LIB, to)}`);
      }
    }
    assert.deepEqual(wrong, [], `imports against the layering:\n  ${wrong.join('\n  ')}`);
  });

  it('the face model and the style worker load without fastify, better-sqlite3, pg or the gallery server', function () {
    this.timeout(120000);
    const face = loadInChild([path.join(DIST_LIB, 'face', 'model.js')]);
    checkNoServiceStack('face/model.js', face);
    assert.ok(face.tensorMethods, 'face/model.js loaded tensor.js without the operator methods (lib/ops)');

    // The worker itself runs a job from workerData when loaded; load what it requires instead.
    const worker = path.join(DIST_LIB, 'style', 'worker.js');
    const workerDeps = [...fs.readFileSync(worker, 'utf8').matchAll(/\brequire\(\s*"([^"]+)"\s*\)/g)].map((m) => (m[1].startsWith('.') ? resolveRelative(worker, m[1])! : m[1]));
    assert.ok(workerDeps.length > 0 && workerDeps.every(Boolean), `could not resolve worker.js's requires: ${workerDeps}`);
    const style = loadInChild(workerDeps);
    checkNoServiceStack("style/worker.js's imports", style);
    assert.ok(style.tensorMethods, 'the style worker loaded tensor.js without the operator methods (lib/ops)');

    checkNoServiceStack('style/index.js', loadInChild([path.join(DIST_LIB, 'style', 'index.js')]));
    // The package entry too: the service stack loads when a gallery or the server is first made.
    const entry = loadInChild([path.join(DIST_LIB, 'index.js')]);
    checkNoServiceStack('the package entry (lib/index.js)', entry);
    assert.ok(entry.tensorMethods);
  });

  it("the addon's exports match binding.d.ts's Binding interface", () => {
    const src = fs.readFileSync(path.join(ROOT, 'binding.d.ts'), 'utf8');
    const start = src.indexOf('export interface Binding {');
    assert.ok(start >= 0, 'binding.d.ts has no `export interface Binding {`');
    const body = src.slice(start, src.indexOf('\n}', start));
    const declared = new Set([...body.matchAll(/^\s+(\w+)\(/gm)].map((m) => m[1]));
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const exported = new Set(Object.keys(require(path.join(ROOT, 'build', 'Release', 'torchface.node'))));
    const onlyDeclared = [...declared].filter((n) => !exported.has(n)).sort();
    const onlyExported = [...exported].filter((n) => !declared.has(n)).sort();
    assert.ok(declared.size > 0, 'no members found in the Binding interface');
    assert.deepEqual(
      { onlyDeclared, onlyExported },
      { onlyDeclared: [], onlyExported: [] },
      `binding.d.ts and the addon differ: declared but not exported [${onlyDeclared.join(', ')}]; exported but not declared [${onlyExported.join(', ')}]`,
    );
  });
});

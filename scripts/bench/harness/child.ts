// The fresh process of inFreshProcess() (common.ts): argv = the module file, the
// name of its async bench function and that function's options as JSON. The
// result goes back over the IPC channel; disconnecting then lets the process
// end on its own, as the module would alone.
export {}; // a module: its names stay out of the global scope of the other scripts

const [file, fn, options] = process.argv.slice(2);
(require(file) as Record<string, (o: unknown) => Promise<unknown>>)[fn](JSON.parse(options)).then(
  (result) => process.send!(result, () => process.disconnect()),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);

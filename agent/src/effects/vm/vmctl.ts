// A command line over the VM drivers, for the lab, tests and admins. Prints one JSON line.
//   node --import tsx vmctl.ts [--driver process|libvirt] [--opts JSON] COMMAND [ARGS]
//   commands: define JSON | undefine NAME | start NAME | stop NAME [--timeout MS] [--force]
//             state NAME | list | resources
import { parseArgs } from "node:util";
import { createVmDriver, type VmDriverConfig } from "./index.ts";

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    driver: { type: "string", default: "process" },
    opts: { type: "string", default: "{}" },
    timeout: { type: "string", default: "30000" },
    force: { type: "boolean", default: false },
  },
});

async function main(): Promise<unknown> {
  const driver = createVmDriver({ ...(JSON.parse(o.opts!) as object), driver: o.driver } as VmDriverConfig);
  const [cmd, arg] = positionals;
  const need = () => {
    if (!arg) throw new Error(`${cmd} needs an argument`);
    return arg;
  };
  switch (cmd) {
    case "define":
      return driver.define(JSON.parse(need()));
    case "undefine":
      return driver.undefine(need());
    case "start":
      return driver.start(need());
    case "stop":
      return driver.stop(need(), { timeoutMs: Number(o.timeout), force: o.force });
    case "state":
      return driver.state(need());
    case "list":
      return driver.list();
    case "resources":
      return driver.resources();
    default:
      throw new Error(`unknown command ${cmd ?? "(none)"}: use define, undefine, start, stop, state, list or resources`);
  }
}

main().then(
  (result) => console.log(JSON.stringify({ ok: true, result: result ?? null })),
  (err: Error) => {
    console.log(JSON.stringify({ ok: false, error: err.message }));
    process.exitCode = 1;
  },
);

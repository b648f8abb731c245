/**
 * Workers that start together and agree on one shared config, with no coordinator: each calls
 * `SharedMap.openOrCreate` on the same name at the same moment. Exactly one creates the map and
 * seeds it (its `init` runs before anyone else may look), the others wait for that and read the
 * seeded entries, never an empty or half-written map. The workers are spawned with
 * `dieWithParent`, so that none outlives this process, even if it is SIGKILLed.
 *
 * Run: deno run --allow-ffi --allow-run --allow-read examples/open_or_create.ts [WORKERS]
 *
 * @module
 */

import { type Codec, codecs, SharedMap, SharedMemory, spawnDeno } from "../mod.ts";

interface Config {
  readonly seededBy: number;
  readonly batch: number;
}

async function worker(name: string, startAt: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
  using map = await SharedMap.openOrCreate<Config>(name, {
    codec: codecs.json as Codec<Config>,
    persist: true, // the parent removes it once every worker is done
    init: async (fresh) => {
      await new Promise((resolve) => setTimeout(resolve, 50)); // a slow seed, on purpose
      fresh.set("config", { seededBy: Deno.pid, batch: 64 });
    },
  });
  const config = map.get("config");
  console.log(JSON.stringify({ pid: Deno.pid, created: map.created, config }));
}

async function parent(workers: number): Promise<void> {
  const name = `/posix-ipc-config-${Deno.pid}`;
  const startAt = Date.now() + 1000; // every worker calls openOrCreate at this moment
  try {
    const children = Array.from({ length: workers }, () =>
      spawnDeno(import.meta.url, {
        args: ["worker", name, String(startAt)],
        permissions: { ffi: true },
        stdout: "piped",
        dieWithParent: true,
      }));
    const reports = await Promise.all(children.map(async (child) => {
      const { status, stdout } = await child.output();
      if (!status.success) throw new Error(`worker ${child.pid} failed: ${status.state}`);
      return JSON.parse(new TextDecoder().decode(stdout)) as {
        pid: number;
        created: boolean;
        config: Config;
      };
    }));
    for (const report of reports) {
      console.log(
        `worker ${report.pid}: ${report.created ? "created and seeded" : "opened"} the map, ` +
          `config seeded by ${report.config.seededBy}, batch ${report.config.batch}`,
      );
    }
    const creators = reports.filter((report) => report.created).length;
    const agreed = new Set(reports.map((report) => report.config.seededBy)).size === 1;
    console.log(`${creators} of ${workers} created the map; all saw the same config: ${agreed}`);
  } finally {
    try {
      SharedMemory.unlink(name);
    } catch {
      // no worker got as far as creating it
    }
  }
}

if (Deno.args[0] === "worker") await worker(Deno.args[1]!, Number(Deno.args[2]));
else await parent(Number(Deno.args[0] ?? 4));

/**
 * Request/response: a server process answers client processes, single answers and streamed
 * ones, many requests in flight at once, errors included.
 *
 * This process is the server: a "primes" service. It starts CLIENTS client processes (the same
 * file, in client mode): the first finds the server by the descriptor it was handed, the others
 * by the service's name. Each client asks, all at once, whether ten numbers are prime (the
 * answers come back in any order, each to its own request), streams the primes below 50, and
 * asks for an operation the server does not know, which comes back as a RemoteError. When every
 * client is done, the server closes.
 *
 * Run: deno run --allow-ffi --allow-run examples/request_response.ts [CLIENTS] [/NAME]
 *
 * @module
 */

import { Client, codecs, inheritedFd, RemoteError, Server, spawnDeno } from "../mod.ts";

type Request = { op: "isPrime"; n: number } | { op: "primes"; below: number } | { op: string };

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

async function serve(clients: number, name: string): Promise<void> {
  await using server = Server.create<Request, unknown>(async (request, { client }) => {
    if (request.op === "isPrime" && "n" in request) {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 20)); // some work
      return isPrime(request.n);
    }
    if (request.op === "primes" && "below" in request) {
      const below = request.below;
      return (async function* () {
        for (let n = 2; n < below; n++) if (isPrime(n)) yield n;
      })();
    }
    throw new RangeError(`client ${client} asked for "${request.op}", which this server lacks`);
  }, { name, codec: codecs.json });
  console.log(`server ${Deno.pid}: serving "${name}", starting ${clients} clients`);
  const children = Array.from({ length: clients }, (_, i) =>
    spawnDeno(new URL(import.meta.url), {
      args: ["client", i === 0 ? "fd" : name],
      permissions: { ffi: true },
      fds: i === 0 ? { 3: server } : {},
    }));
  const statuses = await Promise.all(children.map((child) => child.status));
  if (!statuses.every((status) => status.success)) throw new Error("a client failed");
  console.log(`server ${Deno.pid}: every client is done; closing`);
}

async function client(service: string): Promise<void> {
  const by = service === "fd" ? "the descriptor it was handed" : `the name "${service}"`;
  await using client = await Client.connect<Request, unknown>(
    service === "fd" ? inheritedFd(3) : service,
    { codec: codecs.json, timeout: 10_000 },
  );
  const me = `client ${Deno.pid}`;
  console.log(`${me}: connected by ${by}`);
  const numbers = Array.from({ length: 10 }, (_, i) => 100 + i);
  const answers = await Promise.all(
    numbers.map((n) => client.request({ op: "isPrime", n }, { timeout: 5000 })),
  );
  const primes = numbers.filter((_, i) => answers[i] === true);
  console.log(`${me}: 10 requests in flight; primes among 100..109: ${primes.join(", ")}`);
  const streamed: unknown[] = [];
  for await (const prime of client.stream({ op: "primes", below: 50 })) streamed.push(prime);
  console.log(`${me}: streamed ${streamed.length} primes below 50: ${streamed.join(" ")}`);
  try {
    await client.request({ op: "factor" });
  } catch (error) {
    if (!(error instanceof RemoteError)) throw error;
    console.log(`${me}: RemoteError (${error.remoteName}): ${error.message}`);
  }
}

if (Deno.args[0] === "client") {
  await client(Deno.args[1]!);
} else {
  await serve(Number(Deno.args[0] ?? 3), Deno.args[1] ?? `/posix-ipc-primes-${Deno.pid}`);
}

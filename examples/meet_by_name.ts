/**
 * Two unrelated processes meet by name: no parent hands anything to the other.
 *
 * Start it twice with the same name, in two terminals. The first run finds the name free,
 * creates a Channel under it in /dev/shm and waits as the host; the second finds the name
 * taken, opens the same channel as a guest and sends a few lines. The host prints what it
 * receives until the guest closes, then removes the name (also on Ctrl-C).
 *
 * Run (twice): deno run --allow-ffi examples/meet_by_name.ts [/NAME]
 *
 * @module
 */

import { Channel, codecs, onSignal } from "../mod.ts";

const name = Deno.args[0] ?? "/posix-ipc-meet";

async function host(channel: Channel<string>): Promise<void> {
  using _stop = onSignal("SIGINT", () => {
    channel.close(); // the creator's close removes the name
    Deno.exit(130);
  });
  console.log(`host ${Deno.pid}: created channel "${name}", waiting for a guest`);
  for await (const line of channel) console.log(`host ${Deno.pid}: received "${line}"`);
  console.log(`host ${Deno.pid}: the guest closed the channel; removing "${name}"`);
}

async function guest(): Promise<void> {
  using channel = Channel.open(name, { codec: codecs.text, role: "send" });
  console.log(`guest ${Deno.pid}: opened channel "${name}" by its name`);
  for (const line of ["hello", `I am process ${Deno.pid}`, "goodbye"]) await channel.send(line);
  console.log(`guest ${Deno.pid}: sent 3 lines`);
}

let created: Channel<string> | undefined;
try {
  created = Channel.create({ name, codec: codecs.text, role: "receive", capacity: 4096 });
} catch (error) {
  if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
}
if (created) {
  using channel = created;
  await host(channel);
} else {
  await guest();
}

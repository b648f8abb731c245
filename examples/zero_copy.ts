/**
 * Zero-copy sending: the parent writes each message straight into a Channel's ring with
 * `loan()`, instead of filling a buffer of its own and copying it in with `send()`.
 *
 * The parent renders COUNT "frames" of SIZE bytes in place (a frame number, then a pattern
 * that depends on it), commits them, and abandons every tenth one half-written, which
 * publishes nothing. A child Deno process that got the channel as fd 3 checks every frame
 * and answers with how many it saw, and whether any was damaged or out of order.
 *
 * Run: deno run --allow-ffi --allow-run examples/zero_copy.ts [COUNT] [SIZE]
 *
 * @module
 */

import { Channel, inheritedFd, spawnDeno } from "../mod.ts";

/** Frame `n`'s byte at `i` (after the 4-byte frame number). */
const pattern = (n: number, i: number) => (n * 31 + i) & 0xff;

if (Deno.args[0] === "--receiver") {
  using frames = Channel.fromFd(inheritedFd(3), { role: "receive" });
  using reply = Channel.fromFd(inheritedFd(4), { role: "send" });
  let seen = 0;
  let last = -1;
  let bad = 0;
  for await (const frame of frames) {
    const n = new DataView(frame.buffer, frame.byteOffset).getUint32(0);
    if (n <= last || n % 10 === 9) bad++; // out of order, or an abandoned frame got through
    for (let i = 4; i < frame.length; i += 997) if (frame[i] !== pattern(n, i)) bad++;
    last = n;
    seen++;
  }
  await reply.send(new TextEncoder().encode(JSON.stringify({ seen, bad })));
} else {
  const count = Number(Deno.args[0] ?? 20_000);
  const size = Number(Deno.args[1] ?? 64 * 1024);
  using frames = Channel.create({ role: "send" });
  using reply = Channel.create({ capacity: 4096, role: "receive" });
  await using child = spawnDeno(new URL(import.meta.url).pathname, {
    args: ["--receiver"],
    permissions: { ffi: true },
    fds: { 3: frames, 4: reply },
  });
  const started = performance.now();
  for (let n = 0; n < count; n++) {
    using loan = await frames.loan(size); // waits while the ring is full
    const bytes = loan.bytes;
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(0, n);
    if (n % 10 === 9) continue; // abandoned half-written by `using`: never published
    for (let i = 4; i < size; i++) bytes[i] = pattern(n, i);
    loan.commit();
  }
  frames.close(); // the child's loop ends after the last frame
  const { seen, bad } = JSON.parse(new TextDecoder().decode(await reply.receive()));
  const seconds = (performance.now() - started) / 1000;
  console.log(`${seen} of ${count} frames arrived (${count - seen} abandoned), ${bad} damaged`);
  console.log(`${(seen * size / seconds / 1e6).toFixed(0)} MB/s, rendered in place`);
  if (seen !== count - Math.floor(count / 10) || bad !== 0) Deno.exit(1);
  await child.status;
}

/**
 * A mailbox that sleeps until mail comes: the process registers for its queue's notification
 * (`notifications()`, the kernel's mq_notify) and, after each notice, receives until the queue
 * is empty. Sender processes drop letters in bursts with pauses; none is missed, because the
 * registration is renewed before each notice is handed over, and one for the queue is all the
 * kernel allows: a second process that tries is refused with `Deno.errors.Busy`.
 *
 * Run: deno run --allow-ffi --allow-run examples/queue_notify.ts [SENDERS] [LETTERS]
 *
 * @module
 */

import { MessageQueue, spawnDeno } from "../mod.ts";

async function sender(name: string, letters: number): Promise<void> {
  using mailbox = MessageQueue.open(name, { read: false });
  for (let i = 0; i < letters; i++) {
    await mailbox.send(`letter ${i + 1} from ${Deno.pid}`, { timeout: 10_000 });
    if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 5)); // a pause
  }
}

function rival(name: string): void {
  using mailbox = MessageQueue.open(name, { write: false });
  try {
    mailbox.notifications().close();
    console.log("rival: registered");
  } catch (error) {
    if (!(error instanceof Deno.errors.Busy)) throw error;
    console.log("rival: refused, the mailbox has its one registration (Busy)");
  }
}

async function mailbox(senders: number, letters: number): Promise<void> {
  const name = `/posix-ipc-mailbox-${Deno.pid}`;
  using box = MessageQueue.create(name, { maxMessages: 10, messageSize: 64 });
  using notices = box.notifications();
  const child = (...args: string[]) =>
    spawnDeno(import.meta.url, { args, permissions: { ffi: true }, dieWithParent: true });
  const refused = await child("rival", name).status;
  if (!refused.success) throw new Error("the rival failed");
  const children = Array.from({ length: senders }, () => child("sender", name, String(letters)));
  const total = senders * letters;
  let received = 0;
  let wakes = 0;
  for await (const _ of notices) {
    wakes++;
    while (box.tryReceive() !== null) received++;
    if (received === total) break;
  }
  for (const sent of children) if (!(await sent.status).success) throw new Error("a sender failed");
  console.log(`${received} of ${total} letters received in ${wakes} wake-ups`);
}

const [role, ...args] = Deno.args;
if (role === "sender") await sender(args[0]!, Number(args[1]));
else if (role === "rival") rival(args[0]!);
else await mailbox(Number(role ?? 3), Number(args[0] ?? 100));

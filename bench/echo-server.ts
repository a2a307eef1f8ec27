// The raw socket floor: a length-prefixed (u32 LE) echo server on a Unix socket, run as its own process
// (`node dist/bench/echo-server.js <socket path>`). It sends every complete frame back as it came, with
// no decoding at all: what a local-socket request costs when nothing but the kernel and libuv is in
// the way. Prints "ready" once it listens.

import fs from 'node:fs';
import net from 'node:net';

const socketPath = process.argv[2];
if (socketPath === undefined) {
  process.stderr.write('usage: echo-server.js <socket path>\n');
  process.exit(2);
}
fs.rmSync(socketPath, { force: true });

const server = net.createServer((socket) => {
  socket.setNoDelay?.(true);
  // Bytes not yet sent back: a frame is held until complete, then gathered once (linear in its size).
  let chunks: Buffer[] = [];
  let total = 0;
  let need = -1;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (need < 0) {
        if (total < 4) break;
        if ((chunks[0] as Buffer).length < 4) chunks = [Buffer.concat(chunks, total)];
        need = 4 + (chunks[0] as Buffer).readUInt32LE(0);
      }
      if (total < need) break;
      const head = chunks[0] as Buffer;
      if (head.length >= need) {
        out.push(head.subarray(0, need));
        if (head.length === need) chunks.shift();
        else chunks[0] = head.subarray(need);
      } else {
        const all = Buffer.concat(chunks, total);
        out.push(all.subarray(0, need));
        chunks = total > need ? [all.subarray(need)] : [];
      }
      total -= need;
      need = -1;
    }
    // Every complete frame of this read goes back in one write, as any decent server batches.
    if (out.length > 0) socket.write(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
  });
  socket.on('error', () => undefined);
});
server.listen(socketPath, () => process.stdout.write('ready\n'));
// Ends with its parent (the benchmark closes stdin, or dies).
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

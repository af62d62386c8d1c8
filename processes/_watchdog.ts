/**
 * A worker inside every child process. It holds the read end of the pipe the
 * parent writes to the child's stdin: when the parent dies, even by SIGKILL,
 * the pipe closes and this worker kills its own process. It runs on its own
 * thread, so it works even while the child's main thread is stuck in a
 * synchronous loop that no event could interrupt.
 *
 * @module
 */

const buffer = new Uint8Array(256);
try {
  while (await Deno.stdin.read(buffer) !== null) {
    // The parent never writes after the token; any bytes are ignored.
  }
} finally {
  Deno.kill(Deno.pid, "SIGKILL");
}

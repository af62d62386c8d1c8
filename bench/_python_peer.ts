// A Python peer for a bench: a long-lived `python3` running one of bench/_python_*.py, driven
// over its stdin, one line per request and one line per answer.

/** Starts `script`; `undefined` (saying which `group` goes without a peer) when python3 is missing. */
export async function startPythonPeer(script: string, group: string) {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("python3", {
      args: [new URL(`./${script}`, import.meta.url).pathname],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
  } catch {
    console.log(`python3 not found: ${group} has no Python peer`);
    return undefined;
  }
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let text = "";
  /** The next line python3 writes. */
  const next = async () => {
    while (!text.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) throw new Error("python3 ended");
      text += value;
    }
    const line = text.slice(0, text.indexOf("\n"));
    text = text.slice(line.length + 1);
    return line;
  };
  await next(); // "ready"
  return {
    /** Sends one request line and waits for the answer line. */
    async ask(request: string) {
      await writer.write(new TextEncoder().encode(`${request}\n`));
      await next();
    },
    close() {
      writer.close().catch(() => {});
      lines.cancel().catch(() => {});
    },
  };
}

/**
 * Reads a password from standard input: from a pipe as it comes (one trailing newline dropped),
 * or from a terminal without echo, up to Enter. Ctrl-C exits with 130.
 */
export async function readPassword(prompt = 'password: '): Promise<string> {
  const input = process.stdin;
  if (input.isTTY) {
    process.stderr.write(prompt);
    input.setRawMode(true);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of input) {
    const buf = chunk as Buffer;
    if (input.isTTY) {
      if (buf.includes(3)) process.exit(130);
      const end = buf.findIndex((b) => b === 13 || b === 10 || b === 4);
      if (end >= 0) {
        chunks.push(buf.subarray(0, end));
        break;
      }
    }
    chunks.push(buf);
  }
  if (input.isTTY) {
    input.setRawMode(false);
    process.stderr.write('\n');
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

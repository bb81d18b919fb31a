/**
 * The `tftp` package makes packets with the deprecated `new Buffer()`. Until Node has either
 * warned once or counted 10,000 such calls, each one walks the stack to ask whether it came from
 * node_modules: most of a transfer's CPU for the first few thousand blocks after start (a
 * profile of one transfer at blksize 512 showed it). One call from here, with the warning muted,
 * settles it for the process.
 */
export function settleBufferDeprecationCheck(): void {
  const muted = process.noDeprecation;
  process.noDeprecation = true;
  try {
    // biome-ignore lint/suspicious/noExplicitAny: the deprecated constructor is the point of the call.
    new (Buffer as any)(0);
  } finally {
    process.noDeprecation = muted;
  }
}

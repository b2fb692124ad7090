// Preloaded into dynalite (node --require) by runtime/dynalite.
//
// dynalite 4 throws an uncaught exception, and exits, when a client drops a
// request part-way (ECONNRESET / "aborted") — which Go clients do whenever a
// context is cancelled mid-call, e.g. a processor shut down during a sweep.
// One dropped request must not take the server down for every later test,
// so those two errors are ignored; anything else still crashes loudly.
process.on('uncaughtException', (e) => {
  if (e && (e.code === 'ECONNRESET' || e.message === 'aborted')) return;
  console.error(e);
  process.exit(1);
});

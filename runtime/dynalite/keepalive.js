// Preloaded into dynalite (node --require) by runtime/dynalite and by
// scripts/with-dynalite.sh.
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

// Node closes a keep-alive connection after 5 s idle, long before the Go
// clients' transports retire theirs (30 s to 90 s). A client that picks an
// idle connection as the server closes it writes into a reset, and Go does
// not resend a POST by itself: a burst of calls after a pause then fails
// with "connection reset by peer" or "broken pipe". With the server's idle
// timeout longer than any client's, the client always closes first.
const http = require('http');
const createServer = http.createServer;
http.createServer = function (...args) {
  const server = createServer.apply(this, args);
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  return server;
};

'use strict';
// Preloaded by `streamer dev` into Node.js functions (NODE_OPTIONS
// --require). The AWS SDKs for JavaScript (v3 and v2) open their
// connections with tls.connect and ignore HTTPS_PROXY: this sends every
// TLS connection to a *.amazonaws.com host to the local runtime's door
// (STREAMER_AWS_PROXY, host:port) instead, keeping the hostname as the
// TLS server name, so the door serves the right service with a
// certificate for that name (the local CA is in NODE_EXTRA_CA_CERTS).
//
// It also keeps the TLS session of each local server (the door, and the
// gateway's domainName on loopback) for the whole process and offers it
// to the next connection. SDK clients are often built inside the
// handler, each with an Agent of its own whose session cache dies with
// it; without this every invocation pays full handshakes (certificate
// chain checked, server signature) for each of its sockets.
const tls = require('node:tls');

const door = process.env.STREAMER_AWS_PROXY || '';
const sep = door.lastIndexOf(':');
const doorHost = door.slice(0, sep);
const doorPort = Number(door.slice(sep + 1));
const routing = sep > 0 && doorPort > 0;

const aws = /\.amazonaws\.com\.?$/i;
const loopback = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\])$|\.localhost\.?$/i;
const sessions = new Map(); // host:port:servername → the latest session
const maxSessions = 64;

function keep(socket, key) {
  socket.on('session', (session) => {
    sessions.delete(key);
    if (sessions.size >= maxSessions) sessions.delete(sessions.keys().next().value);
    sessions.set(key, session);
  });
  return socket;
}

const connect = tls.connect;
tls.connect = function streamerConnect(...args) {
  let options;
  let callback;
  if (args[0] !== null && typeof args[0] === 'object') {
    options = args[0];
    callback = args[1];
  } else {
    // tls.connect(port[, host][, options][, callback])
    options = {};
    for (const a of args.slice(1)) {
      if (typeof a === 'string') options.host = a;
      else if (typeof a === 'function') callback = a;
      else if (a !== null && typeof a === 'object') options = { ...a, host: options.host ?? a.host };
    }
    options.port = args[0];
  }
  if (options.socket || options.path) {
    return connect.apply(this, args);
  }
  const name = options.servername || options.host;
  let routed;
  if (routing && typeof name === 'string' && aws.test(name)) {
    routed = { ...options, host: doorHost, port: doorPort, servername: name.replace(/\.$/, '') };
    delete routed.lookup;
  } else if (typeof options.host === 'string' && loopback.test(options.host)) {
    routed = { ...options };
  } else {
    return connect.apply(this, args);
  }
  const key = `${routed.host}:${routed.port}:${routed.servername || ''}`;
  if (routed.session === undefined && sessions.has(key)) routed.session = sessions.get(key);
  return keep(callback === undefined ? connect.call(this, routed) : connect.call(this, routed, callback), key);
};

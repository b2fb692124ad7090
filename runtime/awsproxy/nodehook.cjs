'use strict';
// Preloaded by `streamer dev` into Node.js functions (NODE_OPTIONS
// --require). The AWS SDKs for JavaScript (v3 and v2) ignore HTTPS_PROXY;
// this module sends their calls to the local runtime instead.
//
// Requests made with https.request or https.get (what the SDKs' Node.js
// HTTP handlers call) to a *.amazonaws.com host go to the local runtime's
// door (STREAMER_AWS_PROXY, host:port), and those to a local server named
// in STREAMER_LOCAL_HTTP (host:port,...: the gateway's domainName, which
// serves TLS and plain HTTP on one port) go to that server. Both are sent
// over plain HTTP on loopback through one keep-alive Agent per process,
// with the Host header the request would have had over TLS, so the
// signature the SDK made over it still verifies. The function's code
// still builds and sees https URLs; what it saves is a TLS handshake per
// socket and the encryption of every request: SDK clients are often
// built inside the handler, each with an Agent of its own whose sockets
// die with it, so without this every invocation opens fresh sockets.
//
// Other TLS connections to a *.amazonaws.com host (tls.connect: HTTP/2
// clients, hand-made sockets) go to the door over TLS, keeping the
// hostname as the server name, so the door serves the right service with
// a certificate for that name (the local CA is in NODE_EXTRA_CA_CERTS);
// the TLS session of each local server is kept for the process and
// offered to the next connection, so only the first pays a full
// handshake.
const tls = require('node:tls');
const http = require('node:http');
const https = require('node:https');
const { urlToHttpOptions } = require('node:url');

const door = process.env.STREAMER_AWS_PROXY || '';
const sep = door.lastIndexOf(':');
const doorHost = door.slice(0, sep);
const doorPort = Number(door.slice(sep + 1));
const routing = sep > 0 && doorPort > 0;
const localHTTP = new Set(
  (process.env.STREAMER_LOCAL_HTTP || '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean),
);

const aws = /\.amazonaws\.com\.?$/i;
const loopback = /^(localhost|127\.\d+\.\d+\.\d+|::1|\[::1\])$|\.localhost\.?$/i;

// plainAgent carries every rerouted request: its sockets outlive the
// SDK clients that made them. Idle sockets close after a minute, before
// the local servers drop them (two minutes), and do not keep the process
// alive.
const plainAgent = new http.Agent({ keepAlive: true, maxSockets: 50, timeout: 60000, scheduling: 'lifo' });

// requestOptions reads https.request's arguments ([url][, options][,
// callback]) as Node.js does: the URL's parts, then the options over
// them.
function requestOptions(args) {
  let i = 0;
  let options = {};
  if (typeof args[0] === 'string' || args[0] instanceof URL) {
    options = urlToHttpOptions(typeof args[0] === 'string' ? new URL(args[0]) : args[0]);
    i = 1;
  }
  if (args[i] !== null && typeof args[i] === 'object') {
    options = { ...options, ...args[i] };
    i++;
  }
  const callback = typeof args[i] === 'function' ? args[i] : undefined;
  return { options, callback };
}

// reroute returns the options of a plain HTTP request that stands for the
// https request of options, or undefined to leave it alone.
function reroute(options) {
  if (options.socketPath || options.createConnection) return undefined;
  const headers = options.headers;
  if (headers !== undefined && (headers === null || typeof headers !== 'object' || Array.isArray(headers))) return undefined;
  let host = options.hostname || options.host || 'localhost';
  if (typeof host !== 'string') return undefined;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(options.port || options.defaultPort || 443);
  const hostHeader = (host.includes(':') ? `[${host}]` : host) + (port === 443 ? '' : `:${port}`);
  let to;
  if (routing && aws.test(host)) {
    to = { hostname: doorHost, port: doorPort };
  } else if (localHTTP.has(hostHeader.toLowerCase()) || localHTTP.has(`${host}:${port}`.toLowerCase())) {
    to = { hostname: host, port };
  } else {
    return undefined;
  }
  const out = { ...options, ...to, protocol: 'http:', agent: plainAgent };
  delete out.host;
  delete out.defaultPort;
  delete out.lookup;
  out.headers = { ...(headers || {}) };
  if (!Object.keys(out.headers).some((k) => k.toLowerCase() === 'host')) out.headers.host = hostHeader;
  return out;
}

const request = https.request;
const get = https.get;
https.request = function streamerRequest(...args) {
  const { options, callback } = requestOptions(args);
  const plain = reroute(options);
  if (plain === undefined) return request.apply(this, args);
  return callback === undefined ? http.request(plain) : http.request(plain, callback);
};
https.get = function streamerGet(...args) {
  const { options, callback } = requestOptions(args);
  const plain = reroute(options);
  if (plain === undefined) return get.apply(this, args);
  return callback === undefined ? http.get(plain) : http.get(plain, callback);
};

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

'use strict';
// Preloaded by `streamer dev` into Node.js functions (NODE_OPTIONS
// --require). The AWS SDKs for JavaScript (v3 and v2) open their
// connections with tls.connect and ignore HTTPS_PROXY: this sends every
// TLS connection to a *.amazonaws.com host to the local runtime's door
// (STREAMER_AWS_PROXY, host:port) instead, keeping the hostname as the
// TLS server name, so the door serves the right service with a
// certificate for that name (the local CA is in NODE_EXTRA_CA_CERTS).
const tls = require('node:tls');

const door = process.env.STREAMER_AWS_PROXY || '';
const sep = door.lastIndexOf(':');
const doorHost = door.slice(0, sep);
const doorPort = Number(door.slice(sep + 1));

if (sep > 0 && doorPort > 0) {
  const connect = tls.connect;
  const aws = /\.amazonaws\.com\.?$/i;
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
    const name = options.servername || options.host;
    if (typeof name !== 'string' || !aws.test(name) || options.socket || options.path) {
      return connect.apply(this, args);
    }
    const routed = { ...options, host: doorHost, port: doorPort, servername: name.replace(/\.$/, '') };
    delete routed.lookup;
    return callback === undefined ? connect.call(this, routed) : connect.call(this, routed, callback);
  };
}

// Preloaded into the Portkey gateway (node --import) by bench/run.sh: Portkey's start-server.js calls
// @hono/node-server's serve() without a hostname, so it would listen on all interfaces. This binds every
// listen(port) that names no host to 127.0.0.1, so the benchmark stays on loopback.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, args[1] === undefined ? 1 : 0, '127.0.0.1');
  return listen.apply(this, args);
};

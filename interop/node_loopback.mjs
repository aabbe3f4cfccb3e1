// Loaded with `node --import` before a server whose command line takes a port but no interface (the Portkey
// gateway): every server it opens listens on 127.0.0.1 only, as every interop target must.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (args[0] !== null && typeof args[0] === "object") {
    args[0] = { ...args[0], host: "127.0.0.1" };
  } else if (typeof args[0] === "number" || typeof args[0] === "string") {
    // listen(port[, host][, backlog][, callback]): the host, given or not, becomes the loopback address
    const rest = typeof args[1] === "string" ? args.slice(2) : args.slice(1);
    args = [args[0], "127.0.0.1", ...rest];
  }
  return listen.apply(this, args);
};

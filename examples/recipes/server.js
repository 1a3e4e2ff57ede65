// A Node HTTP server on a socket devnode passes (docs/sockets.md):
//     command: node server.js $(socket.Web.fd)
// It answers with the devnode instance and its pid, and stops gracefully on SIGTERM so a
// rolling restart drops nothing.
const http = require("http");

const fd = Number(process.argv[2] || 3);
const server = http.createServer((req, res) => {
  res.setHeader("Content-Type", "text/plain");
  res.end(`${process.env.DEVNODE_INSTANCE} ${process.pid}\n`);
});
server.listen({ fd }, () => console.log(`listening on fd ${fd}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));

// The bundled example: a dependency-free web process for slugrunner.
const http = require('node:http');

const port = Number(process.env.PORT || 5000);
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`Hello from slugkit! (dyno ${process.env.DYNO || 'unknown'}, ${req.method} ${req.url})\n`);
});

server.listen(port, () => console.log(`hello listening on port ${port}`));

// Finish in-flight requests on SIGTERM, as a well-behaved dyno does.
process.on('SIGTERM', () => server.close(() => process.exit(0)));

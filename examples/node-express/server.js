// A small Express app: the nodejs buildpack installs express from the npm
// registry (npm ci, with the npm cache kept between builds) and its release
// makes `npm start` the web process.
const express = require('express');

const app = express();
const port = Number(process.env.PORT || 5000);

app.get('/', (_req, res) => {
  res.type('text/plain').send(`Hello from Express on slugkit (NODE_ENV=${process.env.NODE_ENV}, dyno ${process.env.DYNO || 'local'})\n`);
});

app.get('/health', (_req, res) => {
  res.json({ ok: true, express: require('express/package.json').version });
});

const server = app.listen(port, () => console.log(`listening on port ${port}`));

// slugrunner sends SIGTERM on stop: finish what is in flight, then exit.
process.on('SIGTERM', () => server.close(() => process.exit(0)));

// A real `ws` client, as certauth's tests use it: connects with a client certificate (or
// none), sends "hello", and prints one line: `MESSAGE <text>` for the echo, or
// `STATUS HTTP/<v> <code> <reason>` when the server refuses the upgrade, or `ERROR <msg>`.
// usage: node ws-client.js URL CA [CERT KEY]
const fs = require('fs');
const WebSocket = require('ws');
const [url, ca, cert, key] = process.argv.slice(2);
const opts = { ca: fs.readFileSync(ca), servername: 'localhost' };
if (cert) { opts.cert = fs.readFileSync(cert); opts.key = fs.readFileSync(key); }
const ws = new WebSocket(url, opts);
const done = (line) => { console.log(line); process.exit(0); };
ws.on('open', () => ws.send('hello'));
ws.on('message', (m) => { ws.close(); done('MESSAGE ' + m.toString()); });
ws.on('unexpected-response', (_req, res) =>
  done(`STATUS HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}`));
ws.on('error', (e) => done('ERROR ' + e.message));
setTimeout(() => done('ERROR timeout'), 10000).unref();

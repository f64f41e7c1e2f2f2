// The application behind `certauth serve --upstream`: the seed's apps (http, ws, socket.io)
// with the TLS part taken out. It trusts the identity certauth forwards (RFC 9440
// `Client-Cert`, the DER as `:base64:`, or Envoy's XFCC) and refuses WebSockets and Socket.IO clients
// without it. It records every request head it receives, so tests can see what reached it.
// usage: node upstream.js PORT|SOCKET_PATH
//   GET  /headers           the request as received: {method, url, httpVersion, headers,
//                           rawHeaders} (rawHeaders: every field line as sent, [name, value, …])
//   POST /upload            reads the body: {bytes, sha256}
//   GET  /download?bytes=N  N bytes (byte i = i % 251)
//   GET  /slow?ms=N         answers after N ms
//   GET  /die               writes part of a body, then destroys the socket
//   GET  /seen              the request heads received so far: [{method, url}] (not recorded)
//   GET  /hold, /…/hold     the head and `held\n` at once, then `released\n` and the end once
//                           /release is asked (at once when released)
//   GET  /release, /rearm   (not recorded) ends every held response and answers later
//                           /hold at once; /rearm holds them again
//   GET  /conns             (not recorded) {held, active, peak, busy, busyPeak}: responses
//                           held now; the connections that have carried a recorded request,
//                           open now and at most at once; /busy requests being worked on, now
//                           and at most at once
//   GET  /…/busy?ms=N       works for N ms whatever happens to its connection (as a
//                           thread-per-request server does), then answers
//   ws   /ws                `Echo: <msg> (<subject of Client-Cert>)`; its close code is
//                           recorded as `/ws-closed/<code>`
//   socket.io /socket.io/   `message` → `message` `Echo: <data>`
//   upgrade /h2c…           101 to h2c whatever the upgrade asked, then a byte tunnel
const crypto = require('crypto');
const http = require('http');
const { WebSocketServer } = require('ws');
const { Server } = require('socket.io');

const [where] = process.argv.slice(2);
const seen = [];
const held = new Set();
let released = false;
let active = 0;
let peak = 0;
let busy = 0;
let busyPeak = 0;

// The client certificate certauth forwarded (RFC 9440 `Client-Cert`, or the `Cert` of
// Envoy's `X-Forwarded-Client-Cert`), or null.
function identity(req) {
  const v = req.headers['client-cert'];
  const m = typeof v === 'string' && /^:([A-Za-z0-9+/=]+):$/.exec(v);
  const x = /(?:^|;)Cert="([^"]+)"/.exec(req.headers['x-forwarded-client-cert'] || '');
  try {
    if (m) return new crypto.X509Certificate(Buffer.from(m[1], 'base64'));
    if (x) return new crypto.X509Certificate(decodeURIComponent(x[1]));
  } catch (e) {}
  return null;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://upstream');
  if (url.pathname === '/seen') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify(seen));
  }
  if (url.pathname === '/conns') {
    res.setHeader('content-type', 'application/json');
    return res.end(JSON.stringify({ held: held.size, active, peak, busy, busyPeak }));
  }
  if (url.pathname === '/release' || url.pathname === '/rearm') {
    released = url.pathname === '/release';
    if (released) for (const r of held) r.end('released\n');
    held.clear();
    return res.end('ok\n');
  }
  if (!req.socket.counted) {
    req.socket.counted = true;
    active += 1;
    peak = Math.max(peak, active);
    req.socket.on('close', () => { active -= 1; });
  }
  if (url.pathname.startsWith('/socket.io/')) return; // socket.io answers
  seen.push({ method: req.method, url: req.url });
  if (url.pathname.endsWith('/hold')) {
    res.setHeader('content-type', 'text/plain');
    res.write('held\n');
    if (released) return res.end('released\n');
    held.add(res);
    res.on('close', () => held.delete(res));
    return;
  }
  if (url.pathname.endsWith('/busy')) {
    busy += 1;
    busyPeak = Math.max(busyPeak, busy);
    setTimeout(() => {
      busy -= 1;
      if (!res.destroyed) res.end('done\n');
    }, Number(url.searchParams.get('ms') || 1000));
    return;
  }
  if (url.pathname === '/upload') {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    req.on('data', (d) => { bytes += d.length; hash.update(d); });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }));
    });
    return;
  }
  if (url.pathname === '/download') {
    let left = Number(url.searchParams.get('bytes') || 0);
    const block = Buffer.alloc(251 * 256);
    for (let i = 0; i < block.length; i++) block[i] = i % 251;
    res.setHeader('content-length', String(left));
    const write = () => {
      while (left > 0) {
        const n = Math.min(left, block.length);
        left -= n;
        if (!res.write(n === block.length ? block : block.subarray(0, n))) return res.once('drain', write);
      }
      res.end();
    };
    return write();
  }
  if (url.pathname === '/slow') {
    const t = setTimeout(() => res.end('slow done\n'), Number(url.searchParams.get('ms') || 1000));
    res.on('close', () => clearTimeout(t));
    return;
  }
  if (url.pathname === '/die') {
    res.setHeader('content-length', '1000000');
    res.write('x'.repeat(1000));
    return setTimeout(() => req.socket.destroy(), 50);
  }
  req.resume();
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('connection', 'keep-alive, x-upstream-hop');
    res.setHeader('x-upstream-hop', 'must not reach the client');
    res.end(JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, headers: req.headers, rawHeaders: req.rawHeaders }));
  });
});

const wss = new WebSocketServer({ noServer: true });
server.on('upgrade', (req, socket, head) => {
  if (req.url.startsWith('/socket.io/')) return; // socket.io's engine takes it
  seen.push({ method: req.method, url: req.url });
  // An upstream that switches to h2c whatever was asked (as h2c-capable servers do when
  // asked), then answers every byte: the front door must never relay such a tunnel.
  if (req.url.startsWith('/h2c')) {
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
    socket.on('data', (d) => socket.write(`tunnel: ${d.length} bytes\n`));
    return;
  }
  const cert = identity(req);
  if (!cert) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('message', (m) => ws.send(`Echo: ${m} (${cert.subject.trim()})`));
    ws.on('close', (code) => seen.push({ method: 'CLOSE', url: `/ws-closed/${code}` }));
  });
});

const io = new Server(server);
io.use((socket, next) => (identity(socket.request) ? next() : next(new Error('no client certificate'))));
io.on('connection', (socket) => socket.on('message', (data) => socket.emit('message', `Echo: ${data}`)));

if (/^\d+$/.test(where)) server.listen(Number(where), '127.0.0.1');
else server.listen(where);
server.on('listening', () => console.log('listening'));

// What client-certificate-auth does on every request, as a Node https server for the
// per-request benchmark (benches/src/bin/requests.rs): requestCert with
// rejectUnauthorized:false, then per request `socket.authorized` and the CN from
// `getPeerCertificate()`; 401 otherwise, `hello` for the trusted client.
// usage: node https-server.js PORT DIR   (DIR holds ca.pem, server.pem, server.key)
const fs = require('fs');
const https = require('https');
const path = require('path');
const [port, dir] = process.argv.slice(2);
const read = (f) => fs.readFileSync(path.join(dir, f));
https.createServer({
  key: read('server.key'), cert: read('server.pem'), ca: read('ca.pem'),
  requestCert: true, rejectUnauthorized: false, keepAliveTimeout: 600000,
}, (req, res) => {
  const cert = req.socket.getPeerCertificate();
  if (!req.socket.authorized || !cert || !cert.subject || cert.subject.CN !== 'trusted-client') {
    res.writeHead(401, { 'content-type': 'text/plain', 'content-length': 12 });
    res.end('Unauthorized');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
  res.end('hello');
}).listen(Number(port), '127.0.0.1');

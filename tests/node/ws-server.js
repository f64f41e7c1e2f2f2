// The seed's `ws` pattern as a Node server, for the load harness's comparison: an https
// server with requestCert/rejectUnauthorized:false, the upgrade checked the way
// client-certificate-auth does (socket.authorized, then the CN), `HTTP/1.1 401` on the raw
// socket otherwise, and `Echo: <message>` for each message.
// usage: node ws-server.js PORT DIR   (DIR holds ca.pem, server.pem, server.key)
const fs = require('fs');
const https = require('https');
const path = require('path');
const { WebSocketServer } = require('ws');
const [port, dir] = process.argv.slice(2);
const read = (f) => fs.readFileSync(path.join(dir, f));
const server = https.createServer({
  key: read('server.key'), cert: read('server.pem'), ca: read('ca.pem'),
  requestCert: true, rejectUnauthorized: false,
});
const wss = new WebSocketServer({ noServer: true });
wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`Echo: ${data}`)));
server.on('upgrade', (req, socket, head) => {
  const cert = req.socket.getPeerCertificate();
  if (!req.socket.authorized || !cert || !cert.subject || cert.subject.CN !== 'trusted-client') {
    socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n');
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen(Number(port), '127.0.0.1');

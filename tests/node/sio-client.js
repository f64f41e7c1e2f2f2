// A real socket.io-client, as certauth's tests use it: connects with a client certificate
// (or none), emits `message` "hello", and prints one line: `MESSAGE <data>` for the echo,
// or `CONNECT_ERROR <message>` when the server refuses the connection.
// usage: [SIO_TRANSPORTS=polling,websocket] node sio-client.js URL CA [CERT KEY]
// (transports: websocket only unless SIO_TRANSPORTS says otherwise; polling then upgrade is
// socket.io-client's own default)
const fs = require('fs');
const { io } = require('socket.io-client');
const [url, ca, cert, key] = process.argv.slice(2);
const transports = (process.env.SIO_TRANSPORTS || 'websocket').split(',');
const opts = { ca: fs.readFileSync(ca), transports, reconnection: false, timeout: 8000 };
if (cert) { opts.cert = fs.readFileSync(cert); opts.key = fs.readFileSync(key); }
const socket = io(url, opts);
const done = (line) => { console.log(line); socket.close(); process.exit(0); };
socket.on('connect', () => socket.emit('message', 'hello'));
socket.on('message', (data) => done('MESSAGE ' + data));
socket.on('connect_error', (e) => done('CONNECT_ERROR ' + e.message));
setTimeout(() => done('ERROR timeout'), 10000).unref();

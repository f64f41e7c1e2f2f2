// Headless Chromium driven over the DevTools protocol, with no framework: the `ws` package
// speaks CDP to the browser. One run = one browser with its own HOME (its NSS database holds
// the client certificate the test imported) and one page.
//
//   node browser.js SPEC.json
//
// SPEC: { "chromium": "/usr/bin/chromium", "home": DIR, "url": URL,
//         "crossOrigin": bool,           // serve a blank page on http://127.0.0.1:<free>
//                                         // and load it instead of `url`
//         "inject": [FILE],              // scripts evaluated in the page after load
//         "evaluate": { NAME: EXPR } }   // each awaited, its value returned
// Prints one JSON line: { "status": <HTTP status of the main document>,
//                         "results": { NAME: value or "error: ..." }, "origin": ... }.
// Every step is bounded; the browser is killed on exit.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const WebSocket = require('ws');

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const STEP_MS = 15000;

function bounded(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${STEP_MS} ms`)), STEP_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

// A fresh profile per run (no cached sessions or certificate choices); the NSS database
// under HOME holds the client certificate.
const profile = fs.mkdtempSync(path.join(spec.home, 'profile-'));

function launch() {
  const args = [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--no-default-browser-check', '--disable-extensions', '--disable-background-networking',
    '--remote-debugging-port=0', `--user-data-dir=${profile}`,
    'about:blank',
  ];
  const child = spawn(spec.chromium, args, {
    env: { ...process.env, HOME: spec.home },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group: killing it takes the helper processes too
  });
  const endpoint = new Promise((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`chromium exited (${code}): ${err.slice(-2000)}`)));
  });
  return { child, endpoint: bounded(endpoint, 'chromium start') };
}

class Cdp {
  constructor(ws) {
    this.ws = ws;
    this.next = 1;
    this.pending = new Map();
    this.listeners = [];
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw);
      if (msg.id && this.pending.has(msg.id)) {
        const { resolve, reject } = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) reject(new Error(msg.error.message));
        else resolve(msg.result);
      } else if (msg.method) {
        this.listeners.forEach((l) => l(msg));
      }
    });
  }
  send(method, params = {}, sessionId) {
    const id = this.next++;
    this.ws.send(JSON.stringify({ id, method, params, sessionId }));
    return bounded(new Promise((resolve, reject) => this.pending.set(id, { resolve, reject })), method);
  }
  once(pred, what) {
    return bounded(new Promise((resolve) => {
      const l = (msg) => {
        if (pred(msg)) {
          this.listeners = this.listeners.filter((x) => x !== l);
          resolve(msg);
        }
      };
      this.listeners.push(l);
    }), what);
  }
}

function crossOriginServer() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>another origin</title><p>another origin</p>');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function main() {
  const { child, endpoint } = launch();
  let other;
  try {
    const ws = new WebSocket(await endpoint, { perMessageDeflate: false });
    await bounded(new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); }), 'cdp connect');
    const cdp = new Cdp(ws);
    const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
    await cdp.send('Page.enable', {}, sessionId);
    await cdp.send('Network.enable', {}, sessionId);
    let url = spec.url;
    if (spec.crossOrigin) {
      other = await crossOriginServer();
      url = `http://127.0.0.1:${other.address().port}/`;
    }
    const document = cdp.once((m) => m.sessionId === sessionId && m.method === 'Network.responseReceived'
      && m.params.type === 'Document', 'document response');
    const loaded = cdp.once((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired', 'page load');
    const nav = await cdp.send('Page.navigate', { url }, sessionId);
    let status = null;
    if (nav.errorText) {
      status = nav.errorText;
    } else {
      status = (await document).params.response.status;
      await loaded;
    }
    for (const file of spec.inject || []) {
      await cdp.send('Runtime.evaluate', { expression: fs.readFileSync(file, 'utf8') }, sessionId);
    }
    const results = {};
    for (const [name, expression] of Object.entries(spec.evaluate || {})) {
      try {
        const r = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
        results[name] = r.exceptionDetails
          ? `error: ${r.exceptionDetails.exception ? r.exceptionDetails.exception.description : r.exceptionDetails.text}`
          : r.result.value;
      } catch (e) {
        results[name] = `error: ${e.message}`;
      }
    }
    console.log(JSON.stringify({ status, url, results }));
    ws.close();
  } finally {
    if (other) other.close();
    const exited = new Promise((resolve) => (child.exitCode !== null ? resolve() : child.on('exit', resolve)));
    try { process.kill(-child.pid, 'SIGKILL'); } catch (_) { child.kill('SIGKILL'); }
    await exited;
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (_) {
      // A helper still finishing a write: the caller's temporary HOME goes anyway.
    }
  }
}

main().then(() => process.exit(0), (e) => { console.error(String(e.stack || e)); process.exit(1); });

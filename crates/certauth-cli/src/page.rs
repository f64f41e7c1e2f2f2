//! The page for people: `certauth serve` answers a browser's `GET /` (`Accept: text/html`)
//! with one self-contained HTML page (no external assets, no CDN) showing the certificate
//! the browser presented, the decision and its code, and a button that opens the WebSocket
//! echo, so an operator can debug a client-certificate setup by opening one URL. A refused
//! browser gets the same page with the refusal's status (the reason only with
//! `--expose-reasons`).

use certauth_core::policy::{HeaderMap, RequestInfo};
use certauth_core::{ClientCertificate, Denial};

/// How the page opens the echo: a raw WebSocket (the raw gates) or Socket.IO (`--socketio`),
/// spoken inline (Engine.IO 4 over a WebSocket) so the page needs no client library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Echo {
    WebSocket,
    SocketIo,
}

/// What the page says about the decision.
pub(crate) enum Decision<'a> {
    Allowed,
    /// Refused: the code, and the reason when it may be shown.
    Refused {
        code: &'a str,
        reason: Option<String>,
    },
}

/// Whether a request is a browser asking for a page: `GET /` accepting `text/html`.
pub(crate) fn wants_page(method: &str, target: &str, headers: &dyn HeaderMap) -> bool {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    method == "GET"
        && path == "/"
        && headers
            .get("accept")
            .is_some_and(|a| a.windows(9).any(|w| w.eq_ignore_ascii_case(b"text/html")))
}

/// The page for a refused browser (the authenticator's `deny_body` hook), or `None` for
/// any other request (which keeps certauth's plain-text body).
pub(crate) fn for_denial(
    denial: &Denial,
    request: &RequestInfo<'_>,
    expose: bool,
    echo: Echo,
) -> Option<(&'static str, String)> {
    wants_page(request.method, request.target, request.headers).then(|| {
        let decision = Decision::Refused {
            code: denial.code(),
            reason: expose.then(|| denial.to_string()),
        };
        (CONTENT_TYPE, render(denial.certificate(), &decision, echo))
    })
}

/// The page's content type.
pub(crate) const CONTENT_TYPE: &str = "text/html; charset=utf-8";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn row(out: &mut String, label: &str, id: &str, value: &str) {
    out.push_str(&format!(
        "<tr><th>{label}</th><td id=\"{id}\">{}</td></tr>\n",
        escape(value)
    ));
}

/// The whole page. Element ids (`decision`, `code`, `subject`, …, `echo-result`) are what
/// the browser tests read.
pub(crate) fn render(
    cert: Option<&ClientCertificate>,
    decision: &Decision<'_>,
    echo: Echo,
) -> String {
    let (title, class, code) = match decision {
        Decision::Allowed => ("Allowed", "ok", "ALLOWED"),
        Decision::Refused { code, .. } => ("Refused", "no", *code),
    };
    let mut body = format!(
        "<h1 class=\"{class}\">Client certificate: <span id=\"decision\">{title}</span></h1>\n\
         <p>Code: <code id=\"code\">{}</code></p>\n",
        escape(code)
    );
    if let Decision::Refused { reason, .. } = decision {
        match reason {
            Some(r) => body.push_str(&format!("<p id=\"reason\">{}</p>\n", escape(r))),
            None => body.push_str(
                "<p id=\"reason\">The reason is in the server's log (start it with \
                 <code>--expose-reasons</code> to show it here).</p>\n",
            ),
        }
    }
    match cert {
        None => body.push_str(
            "<p id=\"no-certificate\">Your browser presented no certificate. Install one \
             issued by the CA the server trusts, and open this page again (the browser may \
             ask which certificate to use).</p>\n",
        ),
        Some(cert) => {
            let legacy = cert.to_legacy_object();
            body.push_str("<table>\n");
            row(
                &mut body,
                "Subject",
                "subject",
                &cert.subject().to_rfc4514(),
            );
            row(&mut body, "Issuer", "issuer", &cert.issuer().to_rfc4514());
            row(
                &mut body,
                "Alternative names",
                "sans",
                legacy.subjectaltname.as_deref().unwrap_or("none"),
            );
            row(&mut body, "Valid from", "valid-from", &legacy.valid_from);
            row(&mut body, "Valid to", "valid-to", &legacy.valid_to);
            row(&mut body, "Serial", "serial", &legacy.serial_number);
            row(&mut body, "SHA-256", "fingerprint", &legacy.fingerprint256);
            body.push_str("</table>\n");
        }
    }
    let script = match echo {
        Echo::WebSocket => ECHO_WEBSOCKET,
        Echo::SocketIo => ECHO_SOCKETIO,
    };
    let csp = content_security_policy(script);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>certauth: {title}</title><style>{STYLE}</style></head><body>\n{body}\
         <p><button id=\"echo\" type=\"button\">Open the WebSocket echo</button> \
         <output id=\"echo-result\"></output></p>\n\
         <p class=\"small\">Served by certauth. <code>GET /whoami</code> returns the \
         certificate as JSON.</p>\n<script>{script}</script>\n</body></html>\n"
    )
}

/// The page's Content-Security-Policy: nothing but its own inline script and style (by
/// their SHA-256) and WebSockets to its own origin. The page shows what a client sent
/// (escaped); should anything slip through the escaping, no other script runs and nothing
/// loads or posts elsewhere. In a `<meta>` element so that every way the page is served
/// (the raw gates, the hyper layer, a refusal's body) carries it.
fn content_security_policy(script: &str) -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
         img-src 'none'; base-uri 'none'; form-action 'none'",
        sha256_source(script),
        sha256_source(STYLE)
    )
}

/// A CSP hash source: `sha256-` and the base64 of the text's SHA-256.
fn sha256_source(text: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:52em;margin:2em auto;\
padding:0 1em}.ok{color:#176117}.no{color:#a31515}th{text-align:left;padding-right:1em;\
vertical-align:top}td{font-family:ui-monospace,monospace;word-break:break-all}\
.small{color:#666;font-size:13px}";

/// Opens `wss://<this host>/`, sends `hello`, shows the reply (or why it failed: a browser
/// only reports that a refused WebSocket errored and closed, never the HTTP status).
const ECHO_WEBSOCKET: &str = r#"
const out = document.getElementById('echo-result');
document.getElementById('echo').onclick = () => {
  out.textContent = 'connecting…';
  const ws = new WebSocket('wss://' + location.host + '/');
  ws.onopen = () => ws.send('hello');
  ws.onmessage = (e) => { out.textContent = e.data; ws.close(); };
  ws.onerror = () => { out.textContent = 'WebSocket error (refused: see the code above)'; };
  ws.onclose = (e) => { if (out.textContent === 'connecting…') out.textContent = 'closed: ' + e.code; };
};
"#;

/// The same over Socket.IO, speaking Engine.IO 4 on a WebSocket: `0` open, `40` connect to
/// `/`, `42["message",…]` events, `44` a connect error (a refused client).
const ECHO_SOCKETIO: &str = r#"
const out = document.getElementById('echo-result');
document.getElementById('echo').onclick = () => {
  out.textContent = 'connecting…';
  const ws = new WebSocket('wss://' + location.host + '/socket.io/?EIO=4&transport=websocket');
  ws.onmessage = (e) => {
    const p = String(e.data);
    if (p.startsWith('0')) ws.send('40');
    else if (p === '2') ws.send('3');
    else if (p.startsWith('40')) ws.send('42["message","hello"]');
    else if (p.startsWith('44')) { out.textContent = 'connect_error: ' + JSON.parse(p.slice(2)).message; ws.close(); }
    else if (p.startsWith('42')) { out.textContent = JSON.parse(p.slice(2))[1]; ws.close(); }
  };
  ws.onerror = () => { out.textContent = 'WebSocket error'; };
  ws.onclose = (e) => { if (out.textContent === 'connecting…') out.textContent = 'closed: ' + e.code; };
};
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_it_shows() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let page = render(
            None,
            &Decision::Refused {
                code: "NO_CERTIFICATE",
                reason: Some("<script>alert(1)</script>".into()),
            },
            Echo::WebSocket,
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("id=\"no-certificate\""));
    }

    /// The CSP allows exactly the page's own script and style: their hashes are those of
    /// the text between the tags (what a browser hashes), and nothing else may run or load.
    #[test]
    fn the_page_carries_a_policy_that_allows_only_its_own_script_and_style() {
        assert_eq!(
            sha256_source(""),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        for echo in [Echo::WebSocket, Echo::SocketIo] {
            let page = render(None, &Decision::Allowed, echo);
            let between = |open: &str, close: &str| {
                let start = page.find(open).unwrap() + open.len();
                page[start..start + page[start..].find(close).unwrap()].to_owned()
            };
            let script = between("<script>", "</script>");
            let style = between("<style>", "</style>");
            let csp = between("http-equiv=\"Content-Security-Policy\" content=\"", "\"");
            assert!(csp.starts_with("default-src 'none'; "), "{csp}");
            assert!(csp.contains(&format!("script-src '{}'", sha256_source(&script))));
            assert!(csp.contains(&format!("style-src '{}'", sha256_source(&style))));
            assert!(csp.contains("connect-src 'self'"));
            assert_eq!(page.matches("<script").count(), 1);
        }
    }

    #[test]
    fn only_a_browsers_get_of_the_root_wants_the_page() {
        let html: &[(&str, &[u8])] = &[("Accept", b"text/html,application/xhtml+xml,*/*")];
        let json: &[(&str, &[u8])] = &[("Accept", b"application/json")];
        assert!(wants_page("GET", "/", &html));
        assert!(wants_page("GET", "/?x=1", &html));
        assert!(!wants_page("GET", "/whoami", &html));
        assert!(!wants_page("POST", "/", &html));
        assert!(!wants_page("GET", "/", &json));
        let none: &[(&str, &[u8])] = &[];
        assert!(!wants_page("GET", "/", &none));
    }
}

//! What a policy sees: the request ([`RequestInfo`]) and the certificate and chain
//! ([`PolicyContext`]), and the owned copy async policies get ([`OwnedPolicyContext`]).

use super::*;

/// The parts of a request a policy may look at.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct RequestInfo<'a> {
    /// The method (`GET`).
    pub method: &'a str,
    /// The request target: the path and its query (`/path?query`); [`Self::path`] is the
    /// path alone.
    pub target: &'a str,
    /// The headers.
    pub headers: &'a dyn HeaderMap,
    /// The peer's address (the TCP peer, not a forwarded one).
    pub remote_addr: Option<IpAddr>,
    /// The authority the request is for (`host[:port]`, as sent: compare hosts
    /// case-insensitively, or use [`Self::host`]), the one the server routes by: HTTP/2's
    /// `:authority`, an HTTP/1.1 absolute-form target's authority (even when a `Host`
    /// header says otherwise), else the `Host` header; `None` without any. The same field
    /// over HTTP/1.1 and HTTP/2: a virtual-host policy reads it, not the `Host` header
    /// (HTTP/2 requests normally have none). Every request is decided with its own
    /// authority, so requests for several hosts sharing one HTTP/2 connection (coalescing)
    /// are each judged for the host they name.
    pub authority: Option<&'a str>,
}

impl fmt::Debug for RequestInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("remote_addr", &self.remote_addr)
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl<'a> RequestInfo<'a> {
    /// A request with the given method and target, no headers and no address.
    pub fn new(method: &'a str, target: &'a str) -> Self {
        Self {
            method,
            target,
            headers: &NoHeaders,
            remote_addr: None,
            authority: None,
        }
    }

    /// The path of the target, without the query.
    pub fn path(&self) -> &'a str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// With headers.
    pub fn with_headers(mut self, headers: &'a dyn HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// With the peer's address.
    pub fn with_remote_addr(mut self, addr: IpAddr) -> Self {
        self.remote_addr = Some(addr);
        self
    }

    /// With the authority the request is for.
    pub fn with_authority(mut self, authority: &'a str) -> Self {
        self.authority = Some(authority);
        self
    }

    /// The host of [`Self::authority`]: without userinfo and port (`admin.example` for
    /// `admin.example:8443`; `[::1]` keeps its brackets), as sent (compare it
    /// case-insensitively).
    pub fn host(&self) -> Option<&'a str> {
        self.authority.map(host_of)
    }
}

/// The host of an authority: after any `userinfo@`, before any `:port` (an IPv6 literal's
/// colons, inside brackets, are kept).
fn host_of(authority: &str) -> &str {
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => &hostport[..i],
        _ => hostport,
    }
}

/// What a policy sees.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct PolicyContext<'a> {
    /// The client's certificate.
    pub cert: &'a ClientCertificate,
    /// The verified chain, when the certificate was verified here (absent when a proxy
    /// header is trusted without re-verification).
    pub chain: Option<&'a VerifiedChain>,
    /// The request.
    pub request: RequestInfo<'a>,
}

impl<'a> PolicyContext<'a> {
    /// A context.
    pub fn new(
        cert: &'a ClientCertificate,
        chain: Option<&'a VerifiedChain>,
        request: RequestInfo<'a>,
    ) -> Self {
        Self {
            cert,
            chain,
            request,
        }
    }
}

/// An owned copy of what a policy sees, for policies that wait.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OwnedPolicyContext {
    /// The client's certificate (cheap to clone).
    pub cert: ClientCertificate,
    /// The verified chain, when verified here.
    pub chain: Option<VerifiedChain>,
    /// The method.
    pub method: String,
    /// The request target (`/path?query`).
    pub target: String,
    /// The request's headers, copied (an async policy outlives the request head): read
    /// them with [`Self::header`] or through [`Self::request`].
    pub(crate) headers: OwnedHeaders,
    /// The peer's address.
    pub remote_addr: Option<IpAddr>,
    /// The authority the request is for (see [`RequestInfo::authority`]).
    pub authority: Option<String>,
}

impl OwnedPolicyContext {
    /// The path of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(&self.target, |(p, _)| p)
    }

    /// The first value of a request header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.get(name)
    }

    /// The request as a sync policy sees it (for sharing code between the two kinds).
    pub fn request(&self) -> RequestInfo<'_> {
        RequestInfo {
            method: &self.method,
            target: &self.target,
            headers: &self.headers,
            remote_addr: self.remote_addr,
            authority: self.authority.as_deref(),
        }
    }
}

/// Headers copied out of a request: name and value pairs, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OwnedHeaders(Vec<(String, Vec<u8>)>);

impl OwnedHeaders {
    /// Copies every header `map` lists ([`HeaderMap::for_each`]).
    pub(crate) fn copy_of(map: &dyn HeaderMap) -> Self {
        let mut out = Vec::new();
        map.for_each(&mut |n, v| out.push((n.to_owned(), v.to_vec())));
        Self(out)
    }

    /// The first value of a header (name case-insensitive).
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every header, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

impl HeaderMap for OwnedHeaders {
    fn get(&self, name: &str) -> Option<&[u8]> {
        Self::get(self, name)
    }

    fn for_each(&self, each: &mut dyn FnMut(&str, &[u8])) {
        self.iter().for_each(|(n, v)| each(n, v));
    }
}

impl OwnedPolicyContext {
    /// Copies a context (the certificate and chain by reference count).
    pub fn from_context(ctx: &PolicyContext<'_>) -> Self {
        Self {
            cert: ctx.cert.clone(),
            chain: ctx.chain.cloned(),
            method: ctx.request.method.to_owned(),
            target: ctx.request.target.to_owned(),
            headers: OwnedHeaders::copy_of(ctx.request.headers),
            remote_addr: ctx.request.remote_addr,
            authority: ctx.request.authority.map(str::to_owned),
        }
    }
}

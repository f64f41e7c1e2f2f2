//! The HTTP client of online revocation checks (`certauth_core::revocation`): connects,
//! writes the bytes the core wrote, reads until the server closes. Glue only: the core
//! builds the request, parses the response and judges it.
//!
//! One client for every runtime: each fetch runs as a task on a tokio runtime the
//! [`Fetcher`] holds, and the decision awaits it through the task's handle, which any
//! executor can poll (smol's included). A decision dropped mid-fetch aborts its task.

use std::io;
use std::time::Duration;

use certauth_core::policy::BoxFuture;
use certauth_core::revocation::{Fetch, FetchRequest};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// Fetches OCSP answers and CRLs over HTTP/1.0 for [`certauth_core::revocation::Revocation`],
/// within each request's timeout and size cap.
#[derive(Clone, Debug)]
pub struct Fetcher {
    runtime: Handle,
}

impl Fetcher {
    /// Fetches on `runtime` (whichever runtime polls the decisions).
    pub fn new(runtime: Handle) -> Self {
        Self { runtime }
    }

    /// Fetches on the tokio runtime this is called from; `None` outside one.
    pub fn on_current_runtime() -> Option<Self> {
        Handle::try_current().ok().map(Self::new)
    }
}

impl Fetch for Fetcher {
    fn fetch(&self, request: FetchRequest) -> BoxFuture<Result<Vec<u8>, io::Error>> {
        let limit = request.timeout();
        let task = Abort(self.runtime.spawn(async move {
            match tokio::time::timeout(limit, exchange(&request)).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no complete answer within {}", seconds(limit)),
                )),
            }
        }));
        Box::pin(async move {
            let mut task = task;
            (&mut task.0).await.map_err(io::Error::other)?
        })
    }
}

/// One request and its whole response, at most one byte over the cap (the core refuses
/// that as too large).
async fn exchange(request: &FetchRequest) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect((request.host(), request.port())).await?;
    stream.write_all(request.wire()).await?;
    let cap = u64::try_from(request.max_response_bytes())
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut response = Vec::new();
    (&mut stream).take(cap).read_to_end(&mut response).await?;
    Ok(response)
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Aborts the fetch when the decision waiting for it is dropped.
struct Abort(JoinHandle<io::Result<Vec<u8>>>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! `certauth`: see the demo, serve, inspect certificates, verify chains, check policies.
//!
//! Exit codes: 0 success; 1 a failed verification or check, malformed input, or a server
//! that could not run; 2 a usage error (bad arguments, unreadable or invalid configuration).

mod demo;
mod inspect;
mod metrics;
mod page;
mod pki;
mod serve;
mod socketio;
mod tickets;
mod upstream;
mod verify;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "certauth",
    version,
    about = "Mutual-TLS client-certificate authentication"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a throw-away PKI, start a server in-process and show who gets in and why.
    Demo(demo::Args),
    /// Run the WebSocket echo server with client-certificate authentication.
    Serve(Box<serve::Args>),
    /// Print certificates: readable, or `--json` in Node's legacy-object format.
    Inspect(inspect::Args),
    /// Verify a client chain for client authentication: prints `ok` or the error code.
    Verify(verify::VerifyArgs),
    /// Evaluate a policy file against a certificate: prints `allow` or `deny`.
    Check(verify::CheckArgs),
}

/// A command's failure: what to print, and the exit code.
pub(crate) enum Failure {
    /// Exit 1: the thing checked is not acceptable (or could not run).
    Rejected(String),
    /// Exit 2: the invocation or its configuration is wrong.
    Usage(String),
    /// Exit 1, having printed the answer already (`verify`'s code, `check`'s denial).
    Answered,
}

pub(crate) type Outcome = Result<(), Failure>;

/// The largest file certauth reads: 16 MiB (every public root CA together is under 1 MiB).
pub(crate) const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a regular file of at most [`MAX_FILE_BYTES`], as a usage error naming the file
/// otherwise. A FIFO would block the reader until someone writes to it, and a device such
/// as `/dev/zero` never ends: both are refused before they are opened (symbolic links are
/// followed), and what is read stops past the cap.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    use std::io::Read as _;
    let fail = |why: String| Failure::Usage(format!("cannot read {}: {why}", path.display()));
    let regular = |m: std::fs::Metadata| {
        if m.is_file() {
            Ok(())
        } else {
            Err(fail(
                "not a regular file (a FIFO, a device or a directory): certauth reads only \
                 regular files"
                    .into(),
            ))
        }
    };
    regular(std::fs::metadata(path).map_err(|e| fail(e.to_string()))?)?;
    let file = open_for_reading(path).map_err(|e| fail(e.to_string()))?;
    // Checked again on what was opened: the path may have changed in between.
    regular(file.metadata().map_err(|e| fail(e.to_string()))?)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(fail(format!("larger than {} MiB", MAX_FILE_BYTES >> 20)));
    }
    Ok(bytes)
}

/// Opens `path` for reading without waiting for a FIFO's writer (`O_NONBLOCK`): the path
/// may have become a FIFO since it was checked, and opening a FIFO to read blocks until
/// someone opens it to write, which would hold the SIGHUP reload (one at a time) forever.
/// Reads of a regular file ignore the flag.
fn open_for_reading(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    options.open(path)
}

/// Writes a file, as a failure naming it.
pub(crate) fn write(path: &Path, contents: &str) -> Outcome {
    std::fs::write(path, contents)
        .map_err(|e| Failure::Rejected(format!("cannot write {}: {e}", path.display())))
}

/// rustls' ring provider, certauth's default. rustls 0.23.48 deprecates
/// `ring::default_provider` (ring has no post-quantum key exchange); it stays the provider
/// that builds in seconds and needs no C toolchain, so the deprecation is acknowledged
/// here, once, rather than warned about in every build.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Paths in messages.
pub(crate) fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(*a),
        Command::Inspect(a) => inspect::run(a),
        Command::Verify(a) => verify::verify(a),
        Command::Check(a) => verify::check(a),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Rejected(msg)) => {
            eprintln!("certauth: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(msg)) => {
            eprintln!("certauth: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Answered) => ExitCode::from(1),
    }
}

/// A `PathBuf` argument (clap value parser helper).
pub(crate) type FilePath = PathBuf;

#[cfg(all(test, unix))]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Opens the FIFO to write if a reader waits in its `open` (ENXIO when none does).
    fn a_reader_waits(fifo: &Path) -> bool {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
            .is_ok()
    }

    /// A path that becomes a FIFO between `read`'s check and its open (a config file
    /// swapped while SIGHUP reloads it) is refused, not waited on: the open must not block.
    #[test]
    fn a_path_swapped_to_a_fifo_is_never_waited_on() {
        let dir = std::env::temp_dir().join(format!("certauth-fifo-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (regular, fifo, link) = (dir.join("ca.pem"), dir.join("fifo"), dir.join("link.pem"));
        std::fs::write(&regular, "not a certificate").unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        std::os::unix::fs::symlink(&regular, &link).unwrap();

        let (done, reader_done) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let reader = {
            let (link, done, reader_done) = (link.clone(), done.clone(), reader_done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let _ = super::read(&link);
                }
                reader_done.store(true, Ordering::Release);
            })
        };
        let swap = dir.join("swap");
        for _ in 0..20_000 {
            for target in [&fifo, &regular] {
                std::os::unix::fs::symlink(target, &swap).unwrap();
                std::fs::rename(&swap, &link).unwrap();
            }
            if reader_done.load(Ordering::Acquire) {
                break;
            }
        }
        done.store(true, Ordering::Release);
        // A reader that is not stuck finishes its last read at once; one stuck in `open`
        // never does (until a writer comes: this test, below).
        let mut blocked = false;
        for _ in 0..50 {
            if reader_done.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        while !reader_done.load(Ordering::Acquire) {
            blocked |= a_reader_waits(&fifo);
            std::thread::sleep(Duration::from_millis(10));
        }
        reader.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            !blocked,
            "read() waited in open() on a FIFO swapped in after its check"
        );
    }
}

//! Reload without a signal: `serve` polls the files it was given and reloads when one changes.
//!
//! Polling `stat` (every `--watch-interval`, 1 s by default) rather than inotify: it works on
//! every filesystem (NFS, FUSE, overlay, a Kubernetes volume), costs a few system calls per
//! file per second, and needs no new dependency. A file is compared by what its path resolves
//! to (symbolic links followed to the end), its device and inode, size, mtime and ctime, so
//! Kubernetes' atomic update of a mounted Secret or ConfigMap (a new timestamped directory,
//! then the `..data` symbolic link renamed over: every file keeps its path, and the mtime may
//! even be older) is seen, as is a file rewritten in place or replaced by rename.
//!
//! Debounced: a change is reloaded once the files have looked the same for one more interval,
//! so a tool writing several files one after the other causes one reload, not a reload of a
//! half-written set.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::info;

/// The shortest `--watch-interval`.
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// What one file looks like now, or why it cannot be looked at (a missing file is a state
/// too: its return is a change).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Stamp {
    Seen {
        resolved: PathBuf,
        device: u64,
        inode: u64,
        size: u64,
        modified: Option<std::time::SystemTime>,
        changed: (i64, i64),
    },
    Unreadable(String),
}

fn stamp(path: &Path) -> Stamp {
    let seen = std::fs::canonicalize(path).and_then(|resolved| {
        let m = std::fs::metadata(&resolved)?;
        #[cfg(unix)]
        let (device, inode, changed) = {
            use std::os::unix::fs::MetadataExt as _;
            (m.dev(), m.ino(), (m.ctime(), m.ctime_nsec()))
        };
        #[cfg(not(unix))]
        let (device, inode, changed) = (0, 0, (0, 0));
        Ok(Stamp::Seen {
            resolved,
            device,
            inode,
            size: m.len(),
            modified: m.modified().ok(),
            changed,
        })
    });
    seen.unwrap_or_else(|e| Stamp::Unreadable(e.kind().to_string()))
}

/// The stamps of a set of files, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot(Vec<Stamp>);

impl Snapshot {
    pub(crate) fn take(paths: &[PathBuf]) -> Self {
        Self(paths.iter().map(|p| stamp(p)).collect())
    }
}

/// Polls `paths` every `interval` on a thread of its own and calls `reload` (on that thread)
/// after a change, once the files have settled. `start` is the snapshot taken before the
/// configuration in force was read, so a change made while it was read is not missed.
pub(crate) fn spawn(
    paths: Vec<PathBuf>,
    interval: Duration,
    start: Snapshot,
    reload: impl Fn() + Send + 'static,
) {
    if paths.is_empty() {
        return;
    }
    // A zero interval would spin.
    let interval = interval.max(MIN_INTERVAL);
    let spawned = std::thread::Builder::new()
        .name("certauth-watch".into())
        .spawn(move || {
            let (mut applied, mut seen) = (start.clone(), start);
            loop {
                std::thread::sleep(interval);
                let now = Snapshot::take(&paths);
                if now != seen {
                    // Changing: wait for one quiet interval.
                    seen = now;
                    continue;
                }
                if seen != applied {
                    info!(
                        "a watched file changed: reloading --ca, --chain, --crl, --policy, \
                         --path-policy, --cert, --key, --session-ticket-key"
                    );
                    reload();
                    // A failed reload is not retried until the files change again: it was
                    // logged, and the configuration in force stays.
                    applied = seen.clone();
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot watch the configuration files (reload with SIGHUP): {e}");
    }
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Kubernetes' update: a new directory with a file of the same size, `..data` renamed
    /// over it; then the target gone.
    #[test]
    fn a_swapped_data_link_and_a_vanished_target_are_changes() {
        let dir = std::env::temp_dir().join(format!("certauth-watch-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for v in ["..v1", "..v2"] {
            std::fs::create_dir_all(dir.join(v)).unwrap();
            std::fs::write(dir.join(v).join("ca.pem"), "same size!").unwrap();
        }
        std::os::unix::fs::symlink("..v1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/ca.pem", dir.join("ca.pem")).unwrap();
        let paths = vec![dir.join("ca.pem")];
        let before = Snapshot::take(&paths);
        assert_eq!(before, Snapshot::take(&paths));
        std::os::unix::fs::symlink("..v2", dir.join("..data_tmp")).unwrap();
        std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
        let after = Snapshot::take(&paths);
        assert_ne!(before, after);
        std::fs::remove_dir_all(dir.join("..v2")).unwrap();
        assert!(matches!(&Snapshot::take(&paths).0[0], Stamp::Unreadable(_)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! The OS side of a private cluster: the user to run PostgreSQL as when we
//! are root (from `/etc/passwd`), directory ownership and modes, the state
//! directory's lock, and ports.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::cluster::run;
use crate::{BootstrapError, CLUSTER_SUPERUSER, LOCK_TIMEOUT};

/// An unprivileged OS account to run `initdb` and the server as, when we are root.
#[derive(Debug, Clone)]
pub(crate) struct RunAs {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Effective uid of this process: `/proc/self/status`, else `id -u`.
pub(crate) async fn effective_uid() -> Option<u32> {
    if let Ok(status) = tokio::fs::read_to_string("/proc/self/status").await {
        let uid = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|euid| euid.parse().ok());
        if uid.is_some() {
            return uid;
        }
    }
    let mut command = std::process::Command::new("id");
    command.arg("-u");
    let output = run(command, Duration::from_secs(5)).await.ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Entries of `/etc/passwd` as (name, uid, gid).
pub(crate) fn passwd_entries() -> Vec<(String, u32, u32)> {
    let Ok(text) = std::fs::read_to_string("/etc/passwd") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let _password = fields.next()?;
            let uid = fields.next()?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((name.to_owned(), uid, gid))
        })
        .collect()
}

/// Name of the OS user we run as.
pub(crate) async fn current_user_name() -> Option<String> {
    if let Some(uid) = effective_uid().await
        && let Some((name, _, _)) = passwd_entries().into_iter().find(|(_, u, _)| *u == uid)
    {
        return Some(name);
    }
    ["USER", "LOGNAME"].into_iter().find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

/// `None` unless we are root; then the account to run PostgreSQL as
/// (`postgres`, else `nobody`), since initdb and the server refuse root.
pub(crate) async fn run_as_user() -> Result<Option<RunAs>, BootstrapError> {
    if effective_uid().await != Some(0) {
        return Ok(None);
    }
    let entries = passwd_entries();
    for wanted in [CLUSTER_SUPERUSER, "nobody"] {
        if let Some((name, uid, gid)) = entries.iter().find(|(name, _, _)| name == wanted) {
            if *uid == 0 {
                continue;
            }
            return Ok(Some(RunAs { name: name.clone(), uid: *uid, gid: *gid }));
        }
    }
    Err(BootstrapError::Initdb {
        data_dir: PathBuf::new(),
        detail: "running as root, and PostgreSQL refuses to run as root, but there is \
                 neither a `postgres` nor a `nobody` user to run it as; create a \
                 `postgres` user or run Signpost as an ordinary user"
            .to_owned(),
    })
}

/// Whether `user` can enter `dir` and every directory above it, judging by the
/// permission bits (supplementary groups and ACLs are ignored, which errs on
/// the side of "no").
pub(crate) fn traversable_by(dir: &Path, user: &RunAs) -> bool {
    dir.ancestors().all(|ancestor| {
        let Ok(meta) = std::fs::metadata(ancestor) else {
            // Not created yet: we create it ourselves, world-traversable.
            return true;
        };
        let mode = meta.mode();
        if meta.uid() == user.uid {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    })
}

pub(crate) async fn create_dir_all(dir: &Path) -> Result<(), BootstrapError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| BootstrapError::io(format!("cannot create {}", dir.display()), e))
}

/// Creates `dir` if needed with `mode`, refusing symlinks and directories of
/// other users (it may live in /tmp), and hands it to `owner`.
pub(crate) async fn prepare_dir(dir: &Path, owner: Option<&RunAs>, mode: u32) -> Result<(), BootstrapError> {
    let created = match tokio::fs::symlink_metadata(dir).await {
        Ok(meta) => {
            let mine = effective_uid().await;
            let acceptable_owner =
                Some(meta.uid()) == mine || owner.is_some_and(|user| user.uid == meta.uid());
            if !meta.is_dir() || !acceptable_owner {
                return Err(BootstrapError::io(
                    format!("refusing to use {}", dir.display()),
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        "it is not a directory owned by this user",
                    ),
                ));
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir_all(dir).await?;
            true
        }
        Err(e) => {
            return Err(BootstrapError::io(format!("cannot inspect {}", dir.display()), e));
        }
    };
    if created || owner.is_some() {
        tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .await
            .map_err(|e| BootstrapError::io(format!("cannot chmod {}", dir.display()), e))?;
    }
    if let Some(user) = owner {
        chown(dir, user)?;
    }
    Ok(())
}

/// Makes sure the server log exists and that `owner` (who runs `pg_ctl`) can append to it.
pub(crate) async fn prepare_log_file(path: &Path, owner: Option<&RunAs>) -> Result<(), BootstrapError> {
    if let Some(user) = owner {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| BootstrapError::io(format!("cannot create {}", path.display()), e))?;
        chown(path, user)?;
    }
    Ok(())
}

pub(crate) fn chown(path: &Path, user: &RunAs) -> Result<(), BootstrapError> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .map_err(|e| BootstrapError::io(format!("cannot give {} to user {}", path.display(), user.name), e))
}

/// Holds an exclusive lock on `<state_dir>/lock` while the cluster is checked,
/// created and started, so concurrent callers (threads or processes) do not race.
pub(crate) async fn lock_state_dir(state_dir: &Path) -> Result<std::fs::File, BootstrapError> {
    let path = state_dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| BootstrapError::io(format!("cannot open {}", path.display()), e))?;
    let deadline = Instant::now() + LOCK_TIMEOUT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(BootstrapError::io(
                    format!("cannot lock {}", path.display()),
                    io::Error::new(io::ErrorKind::TimedOut, "another process held it for too long"),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(BootstrapError::io(format!("cannot lock {}", path.display()), e));
            }
        }
    }
}

/// The port remembered in `port_file`, or a newly picked free one (remembered).
pub(crate) async fn read_or_pick_port(port_file: &Path) -> Result<u16, BootstrapError> {
    if let Ok(text) = tokio::fs::read_to_string(port_file).await
        && let Ok(port) = text.trim().parse::<u16>()
        && port != 0
    {
        return Ok(port);
    }
    let port = pick_free_port()?;
    write_port(port_file, port).await?;
    Ok(port)
}

pub(crate) async fn write_port(port_file: &Path, port: u16) -> Result<(), BootstrapError> {
    tokio::fs::write(port_file, format!("{port}\n"))
        .await
        .map_err(|e| BootstrapError::io(format!("cannot write {}", port_file.display()), e))
}

/// Ports a private cluster may use: below Linux's default ephemeral range
/// (32768–60999), so that no outgoing connection is ever given the port and a
/// restart right after a stop does not meet it in TIME_WAIT.
const CLUSTER_PORTS: std::ops::Range<u16> = 20_000..32_768;

/// A free TCP port on 127.0.0.1 from [`CLUSTER_PORTS`], drawn at random.
pub(crate) fn pick_free_port() -> Result<u16, BootstrapError> {
    for _ in 0..200 {
        let port = rand::random_range(CLUSTER_PORTS);
        if port_is_free(port) {
            return Ok(port);
        }
    }
    Err(BootstrapError::io(
        "cannot find a free TCP port on 127.0.0.1",
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("200 random ports in {}..{} were taken", CLUSTER_PORTS.start, CLUSTER_PORTS.end),
        ),
    ))
}

/// A port number for a socket-only cluster: it only names the socket file in
/// the cluster's own directory, so it needs no check.
pub(crate) fn socket_port() -> u16 {
    rand::random_range(CLUSTER_PORTS)
}

pub(crate) fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

pub(crate) fn path_hash(path: &Path) -> String {
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..8])
}

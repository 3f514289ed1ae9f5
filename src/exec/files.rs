//! nsnet's own files (the record, the journal, the lock), read and written
//! so that nobody but root can steer them: the state directory is made 0755
//! and refused when it is not a root-owned directory closed to others; every
//! file is opened without following a symlink (`O_NOFOLLOW`) and without
//! blocking (`O_NONBLOCK`, so a FIFO cannot hang nsnet), and refused unless it
//! is a regular file closed to others; reads are bounded; writes go to a
//! temporary file of a unique name created exclusively (`O_EXCL`), are
//! fsynced and renamed over the old file, and the directory is fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use thiserror::Error;

/// Why nsnet will not use one of its files.
#[derive(Debug, Error)]
pub enum FileError {
    #[error(
        "refusing the state directory `{0}`: it is {1} (nsnet trusts only a directory of root's that no one else may write: `chown root: {0} && chmod 755 {0}`)"
    )]
    UntrustedDir(String, String),
    #[error(
        "refusing `{0}`: it is {1} (nsnet trusts only regular files of root's that no one else may write: move it away)"
    )]
    UntrustedFile(String, String),
    #[error("`{0}` is damaged: it is over {1} bytes (move it away to start afresh)")]
    TooLarge(String, u64),
    #[error("cannot {0} `{1}`")]
    Io(&'static str, String, #[source] std::io::Error),
}

/// Files are bounded so a damaged one cannot exhaust memory: a record of
/// thousands of namespaces is a few megabytes.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

fn shown(path: &Path) -> String {
    path.display().to_string()
}

/// What is wrong with an owner and mode nsnet should trust, if anything.
fn distrust(meta: &fs::Metadata) -> Option<String> {
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != 0 && meta.uid() != me {
        return Some(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!(
            "writable by others (mode {:o})",
            meta.mode() & 0o7777
        ));
    }
    None
}

/// Makes the state directory (0755: a user may read the record for
/// `--explain`) if it is missing, then checks it: a
/// real directory, not a symlink, owned by root (or nsnet's user), that no one
/// else may write.
pub fn ensure_dir(dir: &Path) -> Result<(), FileError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
    {
        Ok(()) => {}
        Err(e) => return Err(FileError::Io("create", shown(dir), e)),
    }
    check_dir(dir)
}

/// Checks an existing state directory, as `ensure_dir` does.
pub fn check_dir(dir: &Path) -> Result<(), FileError> {
    let meta = fs::symlink_metadata(dir).map_err(|e| FileError::Io("read", shown(dir), e))?;
    if !meta.file_type().is_dir() {
        return Err(FileError::UntrustedDir(
            shown(dir),
            "not a directory".into(),
        ));
    }
    match distrust(&meta) {
        Some(why) => Err(FileError::UntrustedDir(shown(dir), why)),
        None => Ok(()),
    }
}

/// Opens `path` with `options`, never following a symlink and never
/// blocking, and checks it is a regular file nsnet may trust.
pub fn open(path: &Path, options: &mut OpenOptions) -> Result<File, FileError> {
    let file =
        options
            .custom_flags(libc_flags())
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                    FileError::UntrustedFile(shown(path), "a symbolic link".into())
                }
                _ => FileError::Io("open", shown(path), e),
            })?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::Io("read", shown(path), e))?;
    if !meta.file_type().is_file() {
        return Err(FileError::UntrustedFile(
            shown(path),
            "not a regular file".into(),
        ));
    }
    if let Some(why) = distrust(&meta) {
        return Err(FileError::UntrustedFile(shown(path), why));
    }
    Ok(file)
}

fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC)
        .bits() as i32
}

/// The text of `path`, or `None` if there is no such file; at most
/// `MAX_BYTES`.
pub fn read(path: &Path) -> Result<Option<String>, FileError> {
    let mut file = match open(path, OpenOptions::new().read(true)) {
        Err(FileError::Io(_, _, e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::Io("read", shown(path), e))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(FileError::TooLarge(shown(path), MAX_BYTES));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|e| FileError::Io("read", shown(path), std::io::Error::other(e)))
}

/// Replaces `path` with `text`: a new temporary file beside it, of a unique
/// name and created exclusively (a planted file or link is never written
/// through), written, fsynced, renamed over `path`; then the directory is
/// fsynced, so the rename survives a crash.
pub fn replace(path: &Path, text: &str) -> Result<(), FileError> {
    write_new(path, |file| file.write_all(text.as_bytes()))
}

/// `replace`, with `value` as JSON written straight into the new file:
/// a plan of thousands of steps is never held as text in memory too.
pub fn replace_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    write_new(path, |file| {
        let mut out = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut out, value).map_err(std::io::Error::other)?;
        out.flush()
    })
}

/// Rewrites `path` in place, without fsync, for a note that matters only
/// while this process lives (the tool at work: a crash ends the tool too).
/// In place, it needs no room beyond its own, even in a full directory.
pub fn note(path: &Path, text: &str) -> Result<(), FileError> {
    let mut file = open(
        path,
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644),
    )?;
    file.write_all(text.as_bytes())
        .map_err(|e| FileError::Io("write", shown(path), e))
}

fn write_new(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), unique()));
    let io = |what, e| FileError::Io(what, shown(path), e);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc_flags())
        .open(&tmp)
        .map_err(|e| io("create", e))?;
    let written = write(&mut file)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", e));
    }
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A number no other temporary file of this process has used.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    (NEXT.fetch_add(1, Ordering::Relaxed) << 32) | nanos
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_symlink_a_fifo_or_an_open_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "precious").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("state.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = read(&link).unwrap_err().to_string();
        assert!(err.contains("a symbolic link"), "{err}");
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        // Would block forever without O_NONBLOCK.
        let err = read(&fifo).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let open = dir.path().join("open");
        fs::write(&open, "{}").unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o666)).unwrap();
        let err = read(&open).unwrap_err().to_string();
        assert!(err.contains("writable by others (mode 666)"), "{err}");
        assert_eq!(read(&dir.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn replace_never_writes_through_a_planted_link_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("state.json");
        // Links at every name a careless writer might use.
        for name in ["state.json.tmp", "state.tmp", ".state.json.tmp"] {
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        replace(&path, "{\"v\": 1}\n").unwrap();
        replace(&path, "{\"v\": 2}\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(read(&path).unwrap().unwrap(), "{\"v\": 2}\n");
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_file());
        let left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&format!(".state.json.{}.", std::process::id())))
            .collect();
        assert_eq!(left, Vec::<String>::new());
    }

    #[test]
    fn an_oversized_file_is_damaged_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("state.json");
        let file = File::create(&big).unwrap();
        file.set_len(MAX_BYTES + 1).unwrap();
        let err = read(&big).unwrap_err().to_string();
        assert!(
            err.contains("is damaged: it is over 16777216 bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_directory_open_to_others_or_a_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("nsnet");
        ensure_dir(&state).unwrap();
        let mode = fs::metadata(&state).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        fs::set_permissions(&state, fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_dir(&state).unwrap_err().to_string();
        assert!(err.contains("writable by others (mode 777)"), "{err}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&state, &link).unwrap();
        let err = check_dir(&link).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}

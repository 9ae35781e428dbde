//! Files at rest that only the server's own user may read: the data directory (0700), the
//! SQLite database with its `-wal`/`-shm` files and `secret.key` (0600).
//!
//! Modes are set explicitly after creating (`chmod`), so the result does not depend on the
//! process's umask. An existing data directory keeps the mode the operator gave it (a warning
//! says when others can enter it); an existing database file is narrowed to 0600 when opened;
//! an existing `secret.key` that group or others may read or write is refused
//! ([`check_private_file`]), because the key decrypts every stored credential.
//!
//! On other platforms than Unix these are no-ops.

use std::io;
use std::path::Path;

/// Mode of the data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the database files and `secret.key`.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) when it does not exist, the last component with mode
/// 0700. An existing directory is left as it is, with a warning when group or others may
/// enter it.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %dir.display(),
                    mode = format!("{mode:04o}"),
                    "the data directory is open to group or others; snapex creates it 0700"
                );
            }
        }
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    match builder.create(dir) {
        Ok(()) => set_mode(dir, DIR_MODE),
        // Another process created it between the check and here.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets `path` to mode 0600 when it exists and has another mode (a missing file is not an
/// error: SQLite removes its `-wal` and `-shm` files when the last connection closes).
pub fn restrict_file(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o777 == FILE_MODE => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    match set_mode(path, FILE_MODE) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Fails when group or others may read or write `path` (any of the bits 0o066). Execute bits
/// are not secrets and are tolerated.
pub fn check_private_file(path: &Path) -> Result<(), u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o066 != 0 {
                return Err(mode);
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_directory_is_owner_only_and_an_existing_one_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/data");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o750);
    }

    #[test]
    fn group_or_other_access_is_refused_and_execute_bits_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("secret.key");
        std::fs::write(&file, "x").unwrap();
        for (m, ok) in [(0o600, true), (0o700, true), (0o711, true), (0o640, false)] {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(m)).unwrap();
            assert_eq!(check_private_file(&file).is_ok(), ok, "{m:o}");
        }
        assert_eq!(check_private_file(&file), Err(0o640));
        restrict_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        restrict_file(&tmp.path().join("missing")).unwrap();
    }
}

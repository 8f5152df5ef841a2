//! The peers file every local worker reads (`--peers-file`): one base URL per
//! line, rewritten atomically (temp file + rename) so a worker never reads a
//! half-written list.

use std::io::Write;
use std::path::Path;

use super::config::LocalRackError;
use super::state::WorkerAddr;

/// Replaces `path` with the URLs of `live`, one per line.
pub fn write(path: &Path, live: &[WorkerAddr]) -> Result<(), LocalRackError> {
    let err = |source| LocalRackError::PeersFile {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    for w in live {
        writeln!(tmp, "{}", w.url).map_err(err)?;
    }
    tmp.flush().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_url_per_line_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers");
        let w = |n: &str, port: u16| WorkerAddr {
            name: n.into(),
            node: "node1".into(),
            url: format!("http://127.0.1.1:{port}"),
        };
        write(&path, &[w("worker-1", 1000), w("worker-2", 2000)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "http://127.0.1.1:1000\nhttp://127.0.1.1:2000\n"
        );
        write(&path, &[w("worker-2", 2000)]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "http://127.0.1.1:2000\n"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

//! Recording a viewer's stream: the bytes the desktop sent it, each chunk with the
//! milliseconds since the recording began, appended to a file under `RECORDING_DIR` by a task
//! of its own. The tunnel hands chunks over without waiting (they are shared, not copied): a
//! disk that cannot keep up ends the recording (marked incomplete), never the live stream,
//! whose credit is granted as the viewer reads, as always.
//!
//! File format (`.rfbrec`): the line `STREAMSPACE-RFB-RECORDING 1\n`, then per chunk a
//! big-endian u32 of milliseconds, a big-endian u32 of length, and the bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::store::StoreHandle;
use crate::store::recordings::{FinishRecording, StartRecording};

/// The first line of every recording.
pub const MAGIC: &[u8] = b"STREAMSPACE-RFB-RECORDING 1\n";
/// Chunks waiting for the disk at most; beyond, the recording ends.
const QUEUE: usize = 1024;

/// Where a recording goes and whose it is.
pub struct RecordingOf {
    /// The recording's id (its file's name).
    pub id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// The viewer's user.
    pub user_id: Uuid,
    /// Their name.
    pub username: String,
}

/// The tunnel's end of a recording.
pub struct Recorder {
    chunks: Option<mpsc::Sender<(u32, Bytes)>>,
    started: Instant,
    /// Set when the disk fell behind and the recording ended early.
    cut: Arc<AtomicBool>,
}

impl Recorder {
    /// Starts recording into `dir`; the file and its row are made by the writer task.
    pub fn start(dir: &Path, of: RecordingOf, store: StoreHandle) -> Recorder {
        let (tx, rx) = mpsc::channel(QUEUE);
        let file = PathBuf::from(dir).join(format!("{}.rfbrec", of.id));
        let cut = Arc::new(AtomicBool::new(false));
        actix::spawn(write(file, of, store, rx, cut.clone()));
        Recorder {
            chunks: Some(tx),
            started: Instant::now(),
            cut,
        }
    }

    /// Records `bytes` sent to the viewer now; never waits.
    pub fn record(&mut self, bytes: &Bytes) {
        let Some(chunks) = &self.chunks else {
            return;
        };
        let at = u32::try_from(self.started.elapsed().as_millis()).unwrap_or(u32::MAX);
        if chunks.try_send((at, bytes.clone())).is_err() {
            // Full (the disk is behind) or the writer failed: the recording ends here.
            self.cut.store(true, Ordering::Relaxed);
            self.chunks = None;
        }
    }
}

async fn write(
    path: PathBuf,
    of: RecordingOf,
    store: StoreHandle,
    mut chunks: mpsc::Receiver<(u32, Bytes)>,
    cut: Arc<AtomicBool>,
) {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Err(e) = store
        .run(StartRecording {
            id: of.id,
            session_id: of.session_id,
            user_id: of.user_id,
            username: of.username,
            file: file_name,
        })
        .await
    {
        log::warn!(session_id:% = of.session_id; "recording {}: cannot record it: {e}", of.id);
        return;
    }
    let mut written: u64 = 0;
    let mut last_ms = 0;
    let mut problem = None;
    match open(&path).await {
        Ok(mut file) => {
            while let Some((at, bytes)) = chunks.recv().await {
                last_ms = at;
                let mut header = [0u8; 8];
                header[..4].copy_from_slice(&at.to_be_bytes());
                header[4..].copy_from_slice(&(bytes.len() as u32).to_be_bytes());
                if let Err(e) = async {
                    file.write_all(&header).await?;
                    file.write_all(&bytes).await
                }
                .await
                {
                    problem = Some(format!("cannot write {}: {e}", path.display()));
                    break;
                }
                written += bytes.len() as u64;
            }
            if let Err(e) = file.flush().await {
                problem.get_or_insert(format!("cannot write {}: {e}", path.display()));
            }
        }
        Err(e) => problem = Some(format!("cannot create {}: {e}", path.display())),
    }
    let complete = problem.is_none() && !cut.load(Ordering::Relaxed);
    if let Some(problem) = &problem {
        log::warn!(session_id:% = of.session_id; "recording {}: {problem}", of.id);
    }
    let _ = store
        .run(FinishRecording {
            id: of.id,
            bytes: written,
            duration_ms: last_ms,
            complete,
        })
        .await;
}

async fn open(path: &Path) -> std::io::Result<tokio::io::BufWriter<tokio::fs::File>> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    file.write_all(MAGIC).await?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_that_falls_behind_ends_the_recording_and_never_holds_the_stream() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut recorder = Recorder {
            chunks: Some(tx),
            started: Instant::now(),
            cut: Arc::new(AtomicBool::new(false)),
        };
        for i in 0..5u8 {
            recorder.record(&Bytes::from(vec![i]));
        }
        assert!(recorder.cut.load(Ordering::Relaxed), "marked cut short");
        assert!(recorder.chunks.is_none(), "nothing more is handed over");
        // What was queued before the cut is still written, in order.
        assert_eq!(rx.try_recv().unwrap().1, Bytes::from(vec![0]));
        assert_eq!(rx.try_recv().unwrap().1, Bytes::from(vec![1]));
        assert!(rx.try_recv().is_err());
    }
}

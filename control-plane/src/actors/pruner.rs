//! The `Pruner` actor: every [`PRUNE_EVERY`] it deletes what is past its retention
//! (finished commands, audit entries, ended sessions, recordings with their files), a bounded
//! batch at a time, so the tables (and `RECORDING_DIR`) stay as large as their retention and
//! never a giant delete runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use crate::config::Retention;
use crate::store::StoreHandle;
use crate::store::retention::{Prune, Pruned};

/// How often pruning runs (and how soon after start the first run is).
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Rows per table per batch.
const BATCH: i64 = 1000;
/// Batches per run at most: a backlog is worked off over several runs.
const MAX_BATCHES: usize = 100;

/// Runs one pruning pass now (also sent by the timer).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PruneNow;

/// The actor.
pub struct Pruner {
    store: StoreHandle,
    retention: Retention,
    recording_dir: PathBuf,
    running: bool,
}

impl Pruner {
    /// A pruner over `store`; recordings' files live in `recording_dir`.
    pub fn new(store: StoreHandle, retention: Retention, recording_dir: PathBuf) -> Self {
        Pruner {
            store,
            retention,
            recording_dir,
            running: false,
        }
    }
}

/// Deletes the files of pruned recordings (`files` relative to `dir`); one already gone (a
/// shared `RECORDING_DIR` another replica pruned, an admin's deletion) is fine. How many went.
pub async fn remove_recording_files(dir: &Path, files: &[String]) -> usize {
    let mut removed = 0;
    for file in files {
        match tokio::fs::remove_file(dir.join(file)).await {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("pruning: cannot delete recording file {file}: {e}"),
        }
    }
    removed
}

fn before(age: Duration) -> chrono::DateTime<Utc> {
    Utc::now() - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::MAX)
}

impl Actor for Pruner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(PRUNE_EVERY, |_, ctx| ctx.notify(PruneNow));
    }
}

impl Handler<PruneNow> for Pruner {
    type Result = ();

    fn handle(&mut self, _: PruneNow, ctx: &mut Context<Self>) {
        if self.running {
            return;
        }
        self.running = true;
        let (store, retention, dir) = (
            self.store.clone(),
            self.retention,
            self.recording_dir.clone(),
        );
        async move {
            let mut total = Pruned::default();
            for _ in 0..MAX_BATCHES {
                let batch = Prune {
                    commands_before: before(retention.commands),
                    audit_before: before(retention.audit),
                    sessions_before: before(retention.sessions),
                    recordings_before: before(retention.recordings),
                    batch: BATCH,
                };
                match store.run(batch).await {
                    Ok(pruned) => {
                        total.commands += pruned.commands;
                        total.audit += pruned.audit;
                        total.sessions += pruned.sessions;
                        total.viewer_tokens += pruned.viewer_tokens;
                        total.viewers += pruned.viewers;
                        remove_recording_files(&dir, &pruned.recording_files).await;
                        total.recording_files.extend(pruned.recording_files.iter().cloned());
                        if !pruned.full(BATCH) {
                            break;
                        }
                    }
                    Err(e) => {
                        log::warn!("pruning: {e}");
                        break;
                    }
                }
            }
            total
        }
        .into_actor(self)
        .map(|total, this, _| {
            this.running = false;
            if total != Pruned::default() {
                log::info!(
                    "pruned {} commands, {} audit entries, {} sessions and {} recordings past their retention, {} expired viewer tokens, {} stale viewer rows",
                    total.commands,
                    total.audit,
                    total.sessions,
                    total.recording_files.len(),
                    total.viewer_tokens,
                    total.viewers
                );
            }
        })
        .spawn(ctx);
    }
}

//! Backups: `meridian backup create`, `meridian backup list`, the
//! automatic backups a region file's `[backup]` section asks for, and
//! (in [`restore`]) placing a backup where a new datastore's primary
//! loads it.
//!
//! A backup is a folder (or object prefix) named
//! `<datastore>-<region>-<UTC time>` holding two files:
//!
//! - `snapshot.msnp`: a snapshot file exactly as `MERIDIAN SNAPSHOT`
//!   returned it (see [`crate::persist`]: header with the change-log
//!   position, then the engine snapshot);
//! - `backup.json`: [`Meta`], written last, so a folder without it is an
//!   unfinished backup and is never listed or restored.
//!
//! A snapshot that came over the network (`meridian backup create`) is
//! verified before anything is written: it is loaded into a scratch
//! engine, which checks every checksum and count and yields the key counts
//! the metadata records. A scheduled backup takes its snapshot inside the
//! node instead ([`take_local`]): a forked child writes it, as a `BGSAVE`
//! does, and the key counts are the node's own. This module owns the
//! backup format and policy; the bytes of a snapshot belong to `persist`
//! and `engine`.

mod store;

pub mod restore;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use engine::Engine;
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use crate::cli::{BackupArgs, BackupCommand, BackupCreateArgs, BackupListArgs};
use crate::region::{BackupSchedule, RegionConfig};
use crate::shared::Shared;

pub use store::Store;

/// The backup format version this code writes and reads.
pub const FORMAT: u32 = 1;
/// The snapshot file inside a backup.
pub const SNAPSHOT_FILE: &str = "snapshot.msnp";
/// The metadata file inside a backup, written last.
pub const META_FILE: &str = "backup.json";

/// A backup's `backup.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// [`FORMAT`].
    pub format: u32,
    /// The backup's name (its folder).
    pub name: String,
    /// The datastore: the name of the folder holding its region files.
    pub datastore: String,
    /// The region the snapshot was taken on.
    pub region: String,
    /// Change-log epoch of the data's position.
    pub epoch: u64,
    /// Last change-log seq the data includes.
    pub seq: u64,
    /// When the backup was made, unix ms.
    pub created_unix_ms: u64,
    /// The same instant, RFC 3339 in UTC.
    pub created: String,
    /// Keys per database, for the databases holding any.
    pub keys: BTreeMap<usize, u64>,
    /// Keys in every database.
    pub keys_total: u64,
    /// `used_memory` of the data once loaded, bytes (for a scheduled
    /// backup, the node's own figure when the snapshot was taken): about
    /// what a node restoring it needs under `maxmemory`. Restore measures
    /// it again before it places the snapshot.
    pub used_memory: u64,
    /// Size of `snapshot.msnp`, bytes.
    pub bytes: u64,
    /// CRC32C (Castagnoli) of `snapshot.msnp`, 8 lower-case hex digits.
    pub crc32c: String,
    /// The Meridian version that made the backup.
    pub meridian_version: String,
}

/// A snapshot file's bytes, checked, and what they hold.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The snapshot file.
    pub bytes: Vec<u8>,
    /// Change-log epoch of the data.
    pub epoch: u64,
    /// Last change-log seq of the data.
    pub seq: u64,
    /// Keys per non-empty database.
    pub keys: BTreeMap<usize, u64>,
    /// `used_memory` of the loaded data.
    pub used_memory: u64,
}

impl Verified {
    /// Loads `bytes` into a scratch engine made from `config` (its
    /// database count must hold the snapshot's; its memory limit is not
    /// applied): every checksum and count is checked. Returns the checked
    /// bytes with the key counts.
    pub fn check(bytes: Vec<u8>, config: &engine::Config) -> anyhow::Result<Verified> {
        let mut config = config.clone();
        config.maxmemory = 0;
        let mut scratch = Engine::new(config);
        let loaded = crate::persist::read_into(&mut bytes.as_slice(), &mut scratch)?;
        let keys = (0..scratch.config().databases)
            .map(|db| (db, scratch.dbsize(db) as u64))
            .filter(|(_, n)| *n > 0)
            .collect();
        Ok(Verified {
            epoch: loaded.header.epoch,
            seq: loaded.header.seq,
            keys,
            used_memory: scratch.used_memory() as u64,
            bytes,
        })
    }
}

/// The datastore a region belongs to: the name of the folder of its
/// region file, with anything but letters, digits, `.`, `_` and `-`
/// replaced by `_` (it becomes part of backup names).
pub fn datastore_name(region: &RegionConfig) -> String {
    let name = region
        .file
        .parent()
        .and_then(Path::file_name)
        .map_or_else(|| "datastore".into(), |n| n.to_string_lossy().into_owned());
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Takes a snapshot of `region` with `MERIDIAN SNAPSHOT` and checks it
/// (with the region's own engine settings, so its database count fits).
pub fn take(region: &RegionConfig) -> anyhow::Result<Verified> {
    use crate::region_client::{bulk, BULK_LIMIT, BULK_TIMEOUT};
    let bytes = bulk(region, &["MERIDIAN", "SNAPSHOT"], BULK_LIMIT, BULK_TIMEOUT)
        .with_context(|| format!("MERIDIAN SNAPSHOT on {} ({})", region.name, region.client))?;
    let config = crate::options::Settings::load_region(region.clone(), &[])?.engine;
    Verified::check(bytes, &config).with_context(|| {
        format!(
            "the snapshot {} sent is damaged; nothing written",
            region.name
        )
    })
}

/// Takes a snapshot of this node's own data, for a scheduled backup. With
/// the engine locked: the header at the change log's position, the key
/// counts and `used_memory`, and a fork; the forked child writes the data
/// while the node goes on (where fork fails, the data is copied under the
/// lock). No client port, password or user is involved, and the node
/// holds the snapshot's bytes once, not also a scratch copy of the data.
pub fn take_local(shared: &Shared) -> anyhow::Result<Verified> {
    let log = shared.repl.get().map(|node| node.log());
    let (header, keys, used_memory, chunks) = {
        let engine = shared.lock();
        let header = crate::persist::header_at(&engine, log.as_deref());
        let keys: BTreeMap<usize, u64> = (0..engine.config().databases)
            .map(|db| (db, engine.dbsize(db) as u64))
            .filter(|&(_, n)| n > 0)
            .collect();
        let used_memory = engine.used_memory() as u64;
        let chunks = crate::snapshot_child::chunks(&engine, "a scheduled backup");
        (header, keys, used_memory, chunks)
    };
    let bytes = crate::snapshot_child::file(header.encode(), chunks)
        .map_err(|e| anyhow::anyhow!("the snapshot's child failed: {e}"))?;
    Ok(Verified {
        bytes,
        epoch: header.epoch,
        seq: header.seq,
        keys,
        used_memory,
    })
}

/// Writes a backup of `snap` to `store`: `snapshot.msnp`, then
/// `backup.json`. Refuses to overwrite an existing backup.
pub fn write(store: &Store, datastore: &str, region: &str, snap: Verified) -> anyhow::Result<Meta> {
    let now = unix_ms();
    let name = format!("{datastore}-{region}-{}", name_stamp(now));
    if store.get(&name, META_FILE)?.is_some() {
        bail!("{} already exists", store.describe_backup(&name));
    }
    let meta = Meta {
        format: FORMAT,
        name: name.clone(),
        datastore: datastore.to_string(),
        region: region.to_string(),
        epoch: snap.epoch,
        seq: snap.seq,
        created_unix_ms: now,
        created: rfc3339(now),
        keys_total: snap.keys.values().sum(),
        keys: snap.keys,
        used_memory: snap.used_memory,
        bytes: snap.bytes.len() as u64,
        crc32c: format!("{:08x}", crc32c::crc32c(&snap.bytes)),
        meridian_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    store.put(&name, SNAPSHOT_FILE, snap.bytes)?;
    let json = serde_json::to_vec_pretty(&meta).context("encoding backup.json")?;
    store.put(&name, META_FILE, json)?;
    Ok(meta)
}

/// Every backup in `store`, newest first, and a warning for each folder
/// that is not a valid backup (no or unreadable `backup.json`).
pub fn list(store: &Store) -> anyhow::Result<(Vec<Meta>, Vec<String>)> {
    let mut backups = Vec::new();
    let mut warnings = Vec::new();
    for name in store.folders()? {
        match read_meta(store, &name) {
            Ok(meta) => backups.push(meta),
            Err(e) => warnings.push(format!("skipping {}: {e:#}", store.describe_backup(&name))),
        }
    }
    backups.sort_by(|a, b| (b.created_unix_ms, &b.name).cmp(&(a.created_unix_ms, &a.name)));
    Ok((backups, warnings))
}

/// Reads and checks backup `name`'s metadata.
fn read_meta(store: &Store, name: &str) -> anyhow::Result<Meta> {
    let Some(json) = store.get(name, META_FILE)? else {
        bail!("no {META_FILE} (not a backup, or an unfinished one)");
    };
    let meta: Meta = serde_json::from_slice(&json).with_context(|| format!("bad {META_FILE}"))?;
    if meta.format != FORMAT {
        bail!(
            "backup format {} (this Meridian reads format {FORMAT})",
            meta.format
        );
    }
    Ok(meta)
}

/// Deletes the oldest backups of `datastore`'s `region` in `store` beyond
/// the newest `keep` (0 keeps all). Backups of other regions or datastores
/// are never touched. Returns the names deleted.
pub fn apply_retention(
    store: &Store,
    datastore: &str,
    region: &str,
    keep: usize,
) -> anyhow::Result<Vec<String>> {
    if keep == 0 {
        return Ok(Vec::new());
    }
    let (backups, _) = list(store)?;
    let mut removed = Vec::new();
    for old in backups
        .iter()
        .filter(|m| m.datastore == datastore && m.region == region)
        .skip(keep)
    {
        store.remove_backup(&old.name, META_FILE)?;
        removed.push(old.name.clone());
    }
    Ok(removed)
}

/// A backup read back and checked against its metadata.
pub struct Fetched {
    /// Where it was read from, for messages.
    pub location: String,
    /// Its metadata.
    pub meta: Meta,
    /// `snapshot.msnp`, its size and CRC32C as the metadata says.
    pub bytes: Vec<u8>,
}

/// Reads the backup at `location` (a backup folder, or the `file://` or
/// `s3://` URL of one) and checks the snapshot's size and checksum
/// against `backup.json`.
pub fn fetch(location: &str) -> anyhow::Result<Fetched> {
    let (store, name) = Store::open_backup(location)?;
    let at = store.describe_backup(&name);
    let meta = read_meta(&store, &name).with_context(|| format!("backup {at}"))?;
    let Some(bytes) = store.get(&name, SNAPSHOT_FILE)? else {
        bail!("backup {at}: no {SNAPSHOT_FILE}");
    };
    if bytes.len() as u64 != meta.bytes {
        bail!(
            "backup {at} is damaged: {SNAPSHOT_FILE} has {} bytes, {META_FILE} says {}",
            bytes.len(),
            meta.bytes
        );
    }
    let crc = format!("{:08x}", crc32c::crc32c(&bytes));
    if crc != meta.crc32c {
        bail!(
            "backup {at} is damaged: {SNAPSHOT_FILE} has CRC32C {crc}, {META_FILE} says {}",
            meta.crc32c
        );
    }
    Ok(Fetched {
        location: at,
        meta,
        bytes,
    })
}

/// `meridian backup ...`.
pub fn run(args: &BackupArgs) -> anyhow::Result<()> {
    match &args.command {
        BackupCommand::Create(a) => create(a),
        BackupCommand::List(a) => list_cmd(a),
    }
}

/// `meridian backup create --region R [DIR] --to TARGET [--retain N]`.
fn create(args: &BackupCreateArgs) -> anyhow::Result<()> {
    let regions = crate::lag_cmd::load_dir(args.dir())?;
    let Some(region) = regions.iter().find(|r| r.name == args.region) else {
        bail!(
            "no region '{}' in {} (regions: {})",
            args.region,
            args.dir().display(),
            regions
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let store = Store::open(&args.to)?;
    let (meta, removed) = backup_region(region, &store, args.retain)?;
    println!(
        "backup {} written: region {}, position {}:{}, {} keys, {} bytes, crc32c {}",
        store.describe_backup(&meta.name),
        meta.region,
        meta.epoch,
        meta.seq,
        meta.keys_total,
        meta.bytes,
        meta.crc32c
    );
    for name in removed {
        println!("deleted {} (beyond --retain)", store.describe_backup(&name));
    }
    Ok(())
}

/// One backup of `region` into `store`, then retention (`retain` newest
/// kept; `None` or 0 keeps all): what both `backup create` and the
/// node's schedule run. Returns the new backup and the names deleted.
pub fn backup_region(
    region: &RegionConfig,
    store: &Store,
    retain: Option<usize>,
) -> anyhow::Result<(Meta, Vec<String>)> {
    backup_snapshot(region, store, retain, take(region)?)
}

/// Writes `snap`, taken on `region`, as a backup, then applies `retain`.
fn backup_snapshot(
    region: &RegionConfig,
    store: &Store,
    retain: Option<usize>,
    snap: Verified,
) -> anyhow::Result<(Meta, Vec<String>)> {
    let datastore = datastore_name(region);
    let meta = write(store, &datastore, &region.name, snap)?;
    let removed = match retain {
        Some(keep) => apply_retention(store, &datastore, &region.name, keep)
            .context("the backup was written, but deleting old backups failed")?,
        None => Vec::new(),
    };
    Ok((meta, removed))
}

/// `meridian backup list --from TARGET [--json]`.
fn list_cmd(args: &BackupListArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.from)?;
    let (backups, warnings) = list(&store)?;
    for w in &warnings {
        eprintln!("meridian backup list: warning: {w}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&backups)?);
    } else {
        print!("{}", table(&backups));
    }
    Ok(())
}

/// The backups as a table, newest first.
fn table(backups: &[Meta]) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "REGION".to_string(),
        "POSITION".to_string(),
        "CREATED".to_string(),
        "KEYS".to_string(),
        "SIZE".to_string(),
    ]];
    for m in backups {
        rows.push([
            m.name.clone(),
            m.region.clone(),
            format!("{}:{}", m.epoch, m.seq),
            m.created.clone(),
            m.keys_total.to_string(),
            m.bytes.to_string(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if backups.is_empty() {
        out.push_str("(no backups)\n");
    }
    out
}

/// Runs `[backup]` on the node: a backup every `every` (the first one
/// `every` after start), each on a `meridian-backup` thread: a snapshot
/// of the node's own data ([`take_local`]), written as `meridian backup
/// create` writes one, then retention. A backup still running
/// when the next is due makes that one skip. Every region with a
/// `[backup]` section backs up, whatever its role.
pub async fn schedule(shared: Arc<Shared>, region: RegionConfig, plan: BackupSchedule) {
    let mut stop = shared.subscribe_shutdown();
    if shared.shutdown_requested() {
        return;
    }
    let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let start = tokio::time::Instant::now() + plan.every;
    let mut ticker = tokio::time::interval_at(start, plan.every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    info!(to = %plan.to, every_s = plan.every.as_secs(), retain = plan.retain, "Automatic backups scheduled");
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => return,
        }
        if running.swap(true, std::sync::atomic::Ordering::AcqRel) {
            warn!("Scheduled backup skipped: the previous one is still running");
            continue;
        }
        let (region, plan, done) = (region.clone(), plan.clone(), Arc::clone(&running));
        let node = Arc::downgrade(&shared);
        let spawned = std::thread::Builder::new()
            .name("meridian-backup".into())
            .spawn(move || {
                scheduled_once(&node, &region, &plan);
                done.store(false, std::sync::atomic::Ordering::Release);
            });
        if let Err(e) = spawned {
            error!(error = %e, "Scheduled backup: cannot start its thread");
            running.store(false, std::sync::atomic::Ordering::Release);
        }
    }
}

/// One scheduled backup of the node `node`, logged.
fn scheduled_once(node: &std::sync::Weak<Shared>, region: &RegionConfig, plan: &BackupSchedule) {
    let started = std::time::Instant::now();
    let result = Store::open(&plan.to).and_then(|store| {
        let shared = node
            .upgrade()
            .ok_or_else(|| anyhow::anyhow!("the node is stopping"))?;
        let snap = take_local(&shared)?;
        drop(shared);
        let written = backup_snapshot(region, &store, Some(plan.retain), snap)?;
        Ok((store, written))
    });
    match result {
        Ok((store, (meta, removed))) => {
            info!(
                backup = %store.describe_backup(&meta.name),
                keys = meta.keys_total,
                bytes = meta.bytes,
                epoch = meta.epoch,
                seq = meta.seq,
                ms = started.elapsed().as_millis() as u64,
                "Scheduled backup written"
            );
            for name in removed {
                info!(backup = %store.describe_backup(&name), retain = plan.retain, "Old backup deleted");
            }
        }
        Err(e) => error!(error = %format!("{e:#}"), to = %plan.to, "Scheduled backup failed"),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// (year, month, day, hour, minute, second, millisecond) in UTC.
fn utc(unix_ms: u64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let secs = (unix_ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
    // Days to a civil date (proleptic Gregorian), H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let ms = (unix_ms % 1000) as u32;
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60, ms)
}

/// `2025-01-02T03:04:05.678Z`.
fn rfc3339(unix_ms: u64) -> String {
    let (y, mo, d, h, mi, s, ms) = utc(unix_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `20250102T030405.678Z`: sorts like time, no characters a file system
/// or object store minds.
fn name_stamp(unix_ms: u64) -> String {
    let (y, mo, d, h, mi, s, ms) = utc(unix_ms);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn engine_with(keys: &[(usize, &str)]) -> Engine {
        let mut eng = Engine::new(engine::Config::default());
        let mut s = eng.connect(engine::ConnInfo {
            addr: "a:1".into(),
            laddr: "b:2".into(),
        });
        let mut out = resp::Out::new(resp::Proto::Resp2);
        for (db, key) in keys {
            let db = db.to_string();
            let select = resp::ArgvBuf::from_iter(["SELECT", db.as_str()]);
            eng.execute(&mut s, select.args(), &mut out);
            let set = resp::ArgvBuf::from_iter(["SET", key, "v"]);
            eng.execute(&mut s, set.args(), &mut out);
        }
        eng
    }

    fn temp(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("meridian-backup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// A snapshot file of `eng` with the header of a standalone node.
    fn file_of(eng: &Engine) -> Vec<u8> {
        let dir = temp("file");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dump.msnp");
        let persist = crate::persist::Persist::new(path.to_str().unwrap());
        engine::PersistHooks::save(&*persist, eng).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        bytes
    }

    #[test]
    fn times_format_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_735_787_045_678), "2025-01-02T03:04:05.678Z");
        assert_eq!(name_stamp(1_735_787_045_678), "20250102T030405.678Z");
    }

    #[test]
    fn write_list_fetch_and_retain() {
        let eng = engine_with(&[(0, "a"), (0, "b"), (3, "c")]);
        let snap = Verified::check(file_of(&eng), &engine::Config::default()).unwrap();
        assert_eq!(snap.keys, BTreeMap::from([(0, 2), (3, 1)]));
        let dir = temp("store");
        let store = Store::open(dir.to_str().unwrap()).unwrap();
        let mut names = Vec::new();
        for region in ["r-1", "r-1", "r-2", "r-1"] {
            names.push(write(&store, "ds", region, snap.clone()).unwrap().name);
            std::thread::sleep(Duration::from_millis(3));
        }
        std::fs::create_dir_all(dir.join("not-a-backup")).unwrap();
        let (all, warnings) = list(&store).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].name, names[3], "newest first");
        assert_eq!(all[0].keys_total, 3);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("not-a-backup"), "{warnings:?}");
        let got = fetch(&dir.join(&names[0]).to_string_lossy()).unwrap();
        assert_eq!(got.bytes, snap.bytes);
        // Retention keeps r-1's newest two and never touches r-2.
        let removed = apply_retention(&store, "ds", "r-1", 2).unwrap();
        assert_eq!(removed, [names[0].clone()]);
        let (left, _) = list(&store).unwrap();
        assert_eq!(left.len(), 3);
        assert!(left.iter().any(|m| m.region == "r-2"));
        // A flipped byte is refused.
        let victim = dir.join(&names[3]).join(SNAPSHOT_FILE);
        let mut bytes = std::fs::read(&victim).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&victim, &bytes).unwrap();
        let e = format!(
            "{:#}",
            fetch(&dir.join(&names[3]).to_string_lossy()).err().unwrap()
        );
        assert!(e.contains("is damaged") && e.contains("CRC32C"), "{e}");
        // Damaged bytes never make a backup.
        assert!(Verified::check(bytes, &engine::Config::default()).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_table_lists_newest_first() {
        assert!(table(&[]).contains("(no backups)"));
        let meta = Meta {
            format: FORMAT,
            name: "ds-r-1-x".into(),
            datastore: "ds".into(),
            region: "r-1".into(),
            epoch: 2,
            seq: 77,
            created_unix_ms: 0,
            created: rfc3339(0),
            keys: BTreeMap::from([(0, 5)]),
            keys_total: 5,
            used_memory: 100,
            bytes: 1234,
            crc32c: "00000000".into(),
            meridian_version: "0".into(),
        };
        let t = table(&[meta]);
        assert!(t.contains("ds-r-1-x  r-1     2:77"), "{t}");
    }
}

//! Restore and seeding: a backup's snapshot placed where a new
//! datastore's primary loads its snapshot file at start
//! (`dir/dbfilename`, see [`crate::persist`]); the secondaries then
//! full-sync from it.
//!
//! Only a fresh region is restored into: a region that already has a
//! snapshot file, log segments or role state (`state/<region>.json`)
//! belongs to a datastore with its own history, and its files are never
//! replaced here.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::{fetch, store::write_atomically, Fetched, Verified};
use crate::cli::RestoreArgs;
use crate::options::{Directive, Settings};
use crate::region::{RegionConfig, RegionRole};

/// Where a region keeps its files, as `serve --region` resolves them.
pub struct Placement {
    /// The snapshot file it loads at start: `dir/dbfilename`, relative to
    /// the current directory when `dir` is relative.
    pub snapshot: PathBuf,
    /// Its engine settings (database count, memory limit and policy).
    pub config: engine::Config,
}

impl Placement {
    /// The files of `region`; `dir` overrides its `dir` as `serve --dir`
    /// (or `meridian up`) would.
    pub fn of(region: &RegionConfig, dir: Option<&Path>) -> anyhow::Result<Placement> {
        let cli: Vec<Directive> = dir
            .map(|d| Directive::cli("dir", d.to_string_lossy()))
            .into_iter()
            .collect();
        let config = Settings::load_region(region.clone(), &cli)?.engine;
        let snapshot = Path::new(&config.dir).join(&config.dbfilename);
        Ok(Placement { snapshot, config })
    }

    /// Refuses when `region` already has data or state, naming what to
    /// remove.
    pub fn check_fresh(&self, region: &RegionConfig) -> anyhow::Result<()> {
        let mut found = Vec::new();
        let folder = region.file.parent().unwrap_or(Path::new("."));
        let state = folder.join("state").join(format!("{}.json", region.name));
        if state.exists() {
            found.push(state);
        }
        if self.snapshot.exists() {
            found.push(self.snapshot.clone());
        }
        if let Some(name) = self.config.get("appenddirname").filter(|n| !n.is_empty()) {
            let log = Path::new(&self.config.dir).join(name);
            if std::fs::read_dir(&log).is_ok_and(|mut d| d.next().is_some()) {
                found.push(log);
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        bail!(
            "region {} already has data or state: {}. A backup seeds a NEW datastore; \
             to restore over this one, stop every region and remove those files \
             (and the other regions' state/ files) first: that deletes its data",
            region.name,
            list.join(", ")
        )
    }

    /// Checks `backup` against this region (database count, and whether
    /// it fits under `maxmemory` with `noeviction`), then writes it to the
    /// snapshot path atomically. Returns what was checked.
    pub fn place(&self, region: &RegionConfig, backup: &Fetched) -> anyhow::Result<Verified> {
        let checked = Verified::check(backup.bytes.clone(), &self.config)
            .with_context(|| format!("backup {} does not load", backup.location))?;
        let (limit, policy) = (self.config.maxmemory, &self.config.maxmemory_policy);
        if limit > 0 && checked.used_memory > limit {
            if policy == "noeviction" {
                bail!(
                    "backup {} does not fit region {}: its data needs {} bytes of memory, \
                     maxmemory is {limit} with maxmemory-policy noeviction (raise maxmemory \
                     or choose an eviction policy in {})",
                    backup.location,
                    region.name,
                    checked.used_memory,
                    region.file.display()
                );
            }
            eprintln!(
                "meridian: warning: the backup's data needs {} bytes, over region {}'s \
                 maxmemory {limit}: {policy} evicts keys down to the limit",
                checked.used_memory, region.name
            );
        }
        if let Some(parent) = self.snapshot.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        write_atomically(&self.snapshot, &backup.bytes)?;
        Ok(checked)
    }
}

/// Seeds the datastore of `regions` from the backup at `from`: every
/// region must be fresh; the primary's snapshot file gets the backup.
/// `dir_of` gives the `dir` each region will run with (as `meridian up`
/// passes it), `None` for its own setting. Returns the file written.
pub fn seed(
    regions: &[RegionConfig],
    dir_of: &dyn Fn(&RegionConfig) -> Option<PathBuf>,
    from: &str,
) -> anyhow::Result<PathBuf> {
    let mut primary = None;
    for region in regions {
        let placement = Placement::of(region, dir_of(region).as_deref())?;
        placement.check_fresh(region)?;
        if region.role == RegionRole::Primary {
            primary = Some((region, placement));
        }
    }
    let Some((region, placement)) = primary else {
        bail!("no region has role = \"primary\" to load the backup");
    };
    let backup = fetch(from)?;
    let checked = placement.place(region, &backup)?;
    report(region, &placement, &backup, &checked);
    Ok(placement.snapshot)
}

fn report(region: &RegionConfig, placement: &Placement, backup: &Fetched, checked: &Verified) {
    let m = &backup.meta;
    println!(
        "restored backup {} (datastore {}, region {}, position {}:{}, {} keys) \
         to {} for region {}",
        backup.location,
        m.datastore,
        m.region,
        checked.epoch,
        checked.seq,
        checked.keys.values().sum::<u64>(),
        placement.snapshot.display(),
        region.name
    );
}

/// `meridian restore --region R [DIR] --from PATH [--dir DATA]`: places
/// the backup for region R, which must be the primary at first start and
/// fresh; start it with `meridian serve --region FILE` (with the same
/// `--dir`) and the secondaries full-sync from it.
pub fn run(args: &RestoreArgs) -> anyhow::Result<()> {
    let regions = crate::lag_cmd::load_dir(&args.dir)?;
    let Some(region) = regions.iter().find(|r| r.name == args.region) else {
        bail!("no region '{}' in {}", args.region, args.dir.display());
    };
    if region.role != RegionRole::Primary {
        bail!(
            "region {} is a secondary at first start: it gets its data by a full sync \
             from the primary; restore the backup into the primary ({}) instead",
            region.name,
            region.primary
        );
    }
    let placement = Placement::of(region, args.data_dir.as_deref())?;
    placement.check_fresh(region)?;
    let backup = fetch(&args.from)?;
    let checked = placement.place(region, &backup)?;
    report(region, &placement, &backup, &checked);
    println!(
        "start it with: meridian serve --region {}{}",
        region.file.display(),
        args.data_dir
            .as_ref()
            .map_or_else(String::new, |d| format!(" --dir {}", d.display()))
    );
    Ok(())
}

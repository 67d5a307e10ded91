//! Where backups live: a folder on this machine, or an object store
//! reached through `object_store` (`file:///abs/path` with its local
//! file system backend, `s3://bucket/prefix` for S3 and S3-compatible
//! stores).
//!
//! Every call blocks. Object-store calls run on a small current-thread
//! runtime of the store's own, so never call them from a task of another
//! runtime (the node's scheduled backups run on their own thread).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

/// Temp-file names made unique within the process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A place holding backups, one folder (or object prefix) per backup.
pub enum Store {
    /// A folder: each file is written to a temp file, fsynced, renamed,
    /// and the folder is fsynced.
    Dir(PathBuf),
    /// An object store; every backup is under `prefix`. A put is atomic
    /// per object (the local backend writes a staged file and renames it).
    Object {
        /// The target as given, for messages.
        url: String,
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The prefix backups live under (empty: the root).
        prefix: ObjectPath,
        /// Drives the store's futures.
        runtime: tokio::runtime::Runtime,
    },
}

impl Store {
    /// Opens a target: `s3://bucket/prefix` (credentials, region and
    /// endpoint from the `AWS_*` environment variables), `file:///abs/path`
    /// (created if missing), or a folder path (created when written to).
    pub fn open(target: &str) -> anyhow::Result<Store> {
        match target.split_once("://") {
            Some(("s3", rest)) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    bail!("'{target}': no bucket (s3://bucket/prefix)");
                }
                let store = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .with_context(|| format!("opening {target}"))?;
                Store::object(target, Arc::new(store), prefix)
            }
            Some(("file", rest)) => {
                if !rest.starts_with('/') {
                    bail!("'{target}': a file:// URL needs an absolute path (file:///abs/path)");
                }
                std::fs::create_dir_all(rest).with_context(|| format!("creating {rest}"))?;
                // Cleanup: a deleted backup's emptied folder goes too, so
                // it is not listed as a folder without a backup.
                let store = object_store::local::LocalFileSystem::new_with_prefix(rest)
                    .with_context(|| format!("opening {target}"))?
                    .with_automatic_cleanup(true);
                Store::object(target, Arc::new(store), "")
            }
            Some((scheme, _)) => bail!(
                "'{target}': the {scheme}:// scheme is not supported \
                 (a folder path, file:///abs/path or s3://bucket/prefix)"
            ),
            None if target.is_empty() => bail!("empty backup target"),
            None => Ok(Store::Dir(PathBuf::from(target))),
        }
    }

    fn object(url: &str, store: Arc<dyn ObjectStore>, prefix: &str) -> anyhow::Result<Store> {
        let prefix = ObjectPath::parse(prefix.trim_matches('/'))
            .with_context(|| format!("'{url}': not a valid object prefix"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the object-store runtime")?;
        Ok(Store::Object {
            url: url.trim_end_matches('/').to_string(),
            store,
            prefix,
            runtime,
        })
    }

    /// Splits the location of one backup (a folder path or URL) into the
    /// store holding it and the backup's name.
    pub fn open_backup(location: &str) -> anyhow::Result<(Store, String)> {
        let trimmed = location.trim_end_matches('/');
        let Some((parent, name)) = trimmed.rsplit_once('/') else {
            return Ok((Store::open(".")?, trimmed.to_string()));
        };
        if name.is_empty() || name == "." || name == ".." {
            bail!("'{location}' does not name a backup folder");
        }
        let parent = match parent {
            "" => "/",
            // `file:///x` names x in the root folder.
            p if p.ends_with(':') || p.ends_with(":/") => {
                bail!("'{location}' names a bucket or root, not a backup inside it")
            }
            p => p,
        };
        Ok((Store::open(parent)?, name.to_string()))
    }

    /// Where `name/file` is, for messages.
    pub fn describe(&self, name: &str, file: &str) -> String {
        match self {
            Store::Dir(dir) => dir.join(name).join(file).display().to_string(),
            Store::Object { url, .. } => format!("{url}/{name}/{file}"),
        }
    }

    /// Where backup `name` is, for messages.
    pub fn describe_backup(&self, name: &str) -> String {
        match self {
            Store::Dir(dir) => dir.join(name).display().to_string(),
            Store::Object { url, .. } => format!("{url}/{name}"),
        }
    }

    fn key(prefix: &ObjectPath, name: &str, file: &str) -> ObjectPath {
        prefix.child(name).child(file)
    }

    /// Writes `name/file`, replacing it atomically.
    pub fn put(&self, name: &str, file: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        match self {
            Store::Dir(dir) => {
                let folder = dir.join(name);
                std::fs::create_dir_all(&folder)
                    .with_context(|| format!("creating {}", folder.display()))?;
                write_atomically(&folder.join(file), &bytes)
            }
            Store::Object {
                store,
                prefix,
                runtime,
                ..
            } => {
                let key = Store::key(prefix, name, file);
                runtime
                    .block_on(store.put(&key, PutPayload::from(bytes)))
                    .map_err(object_error)
                    .with_context(|| format!("writing {}", self.describe(name, file)))?;
                Ok(())
            }
        }
    }

    /// Reads `name/file`; `None` when it does not exist.
    pub fn get(&self, name: &str, file: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let what = || format!("reading {}", self.describe(name, file));
        match self {
            Store::Dir(dir) => match std::fs::read(dir.join(name).join(file)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(what),
            },
            Store::Object {
                store,
                prefix,
                runtime,
                ..
            } => {
                let key = Store::key(prefix, name, file);
                let got = runtime.block_on(async {
                    match store.get(&key).await {
                        Ok(r) => r.bytes().await.map(Some),
                        // A missing bucket is an error, not a missing file.
                        Err(e @ object_store::Error::NotFound { .. })
                            if !e.to_string().contains("<Code>NoSuchBucket</Code>") =>
                        {
                            Ok(None)
                        }
                        Err(e) => Err(e),
                    }
                });
                Ok(got
                    .map_err(object_error)
                    .with_context(what)?
                    .map(|b| b.to_vec()))
            }
        }
    }

    /// The names of the folders (or common prefixes) at the top of the
    /// store, sorted; an absent folder holds none.
    pub fn folders(&self) -> anyhow::Result<Vec<String>> {
        let mut names = match self {
            Store::Dir(dir) => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
                };
                let mut names = Vec::new();
                for entry in entries {
                    let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
                names
            }
            Store::Object {
                url,
                store,
                prefix,
                runtime,
            } => {
                let at = (!prefix.as_ref().is_empty()).then_some(prefix);
                let listed = runtime
                    .block_on(store.list_with_delimiter(at))
                    .map_err(object_error)
                    .with_context(|| format!("listing {url}"))?;
                listed
                    .common_prefixes
                    .iter()
                    .filter_map(|p| p.filename().map(str::to_string))
                    .collect()
            }
        };
        names.sort();
        Ok(names)
    }

    /// Deletes backup `name`: `first` (its metadata, so that an
    /// interrupted delete leaves a folder that is no longer listed as a
    /// backup), then everything else in it.
    pub fn remove_backup(&self, name: &str, first: &str) -> anyhow::Result<()> {
        let what = || format!("deleting {}", self.describe_backup(name));
        match self {
            Store::Dir(dir) => {
                let folder = dir.join(name);
                match std::fs::remove_file(folder.join(first)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(what),
                }
                std::fs::remove_dir_all(&folder).with_context(what)
            }
            Store::Object {
                store,
                prefix,
                runtime,
                ..
            } => runtime
                .block_on(async {
                    let meta = Store::key(prefix, name, first);
                    match store.delete(&meta).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    let folder = prefix.child(name);
                    let listed = store.list_with_delimiter(Some(&folder)).await?;
                    for object in listed.objects {
                        match store.delete(&object.location).await {
                            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(())
                })
                .map_err(object_error)
                .with_context(what),
        }
    }
}

/// An object store's error, said once: the store's own code and message
/// when its reply holds them (S3's `<Code>NoSuchBucket</Code>` and
/// `<Message>`), else the error's text (which already includes what
/// caused it: its chain of sources is not repeated after it).
fn object_error(e: object_store::Error) -> anyhow::Error {
    let text = e.to_string();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let len = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + len].to_owned())
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => anyhow::anyhow!("{code}: {}", unescape_xml(&message)),
        _ => anyhow::anyhow!("{text}"),
    }
}

/// XML's five predefined entities, as an S3 error message may hold them.
fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Writes `bytes` to `path` through a temp file beside it: fsync, rename,
/// fsync of the folder. On failure the temp file is removed and `path`
/// is left as it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = File::create(&temp)
            .with_context(|| format!("creating the temp file {}", temp.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("writing {}", temp.display()))?;
        file.sync_all().context("fsync of the temp file")?;
        drop(file);
        crate::persist::rename_durably(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("meridian-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn round_trip(store: &Store) {
        assert!(store.folders().unwrap().is_empty());
        assert_eq!(store.get("b1", "x").unwrap(), None);
        store.put("b1", "meta", b"m".to_vec()).unwrap();
        store.put("b1", "data", b"d".to_vec()).unwrap();
        store.put("b2", "data", b"e".to_vec()).unwrap();
        assert_eq!(store.folders().unwrap(), ["b1", "b2"]);
        assert_eq!(store.get("b1", "data").unwrap().unwrap(), b"d");
        store.remove_backup("b1", "meta").unwrap();
        assert_eq!(store.folders().unwrap(), ["b2"]);
        assert_eq!(store.get("b1", "data").unwrap(), None);
    }

    #[test]
    fn an_object_store_error_is_said_once_with_its_code() {
        let reply = "Error performing GET http://x/b in 3ms - Server returned non-2xx \
                     status code: 404 Not Found: <?xml version=\"1.0\"?><Error>\
                     <Code>NoSuchBucket</Code><Message>Bucket &quot;b&quot; &amp; \
                     friends do not exist</Message></Error>";
        let e = object_store::Error::Generic {
            store: "S3",
            source: reply.into(),
        };
        assert_eq!(
            object_error(e).to_string(),
            "NoSuchBucket: Bucket \"b\" & friends do not exist"
        );
        let plain = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        assert_eq!(
            object_error(plain).to_string(),
            "Generic S3 error: connection refused"
        );
    }

    #[test]
    fn a_folder_and_a_file_url_hold_backups_alike() {
        let dir = temp("dir");
        round_trip(&Store::open(dir.to_str().unwrap()).unwrap());
        let url = temp("url");
        round_trip(&Store::open(&format!("file://{}", url.display())).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&url);
    }

    #[test]
    fn targets_are_checked() {
        for (target, want) in [
            ("gs://b", "not supported"),
            ("file://rel/path", "absolute path"),
            ("s3:///p", "no bucket"),
            ("", "empty"),
        ] {
            let e = format!("{:#}", Store::open(target).err().unwrap());
            assert!(e.contains(want), "{target}: {e}");
        }
        let (store, name) = Store::open_backup("/a/b/name/").unwrap();
        assert!(matches!(store, Store::Dir(ref d) if d == Path::new("/a/b")));
        assert_eq!(name, "name");
        let (store, name) = Store::open_backup("s3://bucket/p/q/name").unwrap();
        assert_eq!(name, "name");
        assert_eq!(store.describe_backup(&name), "s3://bucket/p/q/name");
        assert!(Store::open_backup("s3://bucket").is_err());
    }
}

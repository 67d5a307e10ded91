//! Redis-style settings: names, defaults, parsing of sizes such as `100mb`.

/// A setting that could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No such setting.
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    /// The value does not parse for that setting.
    #[error("CONFIG SET failed (possibly related to argument '{name}') - {reason}")]
    Invalid {
        /// The setting's name.
        name: String,
        /// Why the value was refused.
        reason: String,
    },
}

/// The node's settings. Names follow `redis.conf`.
#[derive(Clone, Debug)]
pub struct Config {
    /// `bind`: the client listener's address.
    pub bind: String,
    /// `port`: the client listener's TCP port.
    pub port: u16,
    /// `databases`: how many numbered databases `SELECT` reaches.
    pub databases: usize,
    /// `maxmemory` in bytes; 0 is no limit.
    pub maxmemory: u64,
    /// `maxmemory-policy`, as Redis spells it (`noeviction`, `allkeys-lru`, ...).
    pub maxmemory_policy: String,
    /// `timeout`: close a client idle this many seconds; 0 never.
    pub timeout: u64,
    /// `requirepass`: empty when no password is set.
    pub requirepass: String,
    /// `hz`: how many times a second the periodic work runs.
    pub hz: u32,
    /// `proto-max-bulk-len`: largest bulk string a request may carry.
    pub proto_max_bulk_len: u64,
    /// `maxclients`.
    pub maxclients: u64,
    /// `dir`: the working directory for files.
    pub dir: String,
    /// `appendonly`: accepted for compatibility.
    pub appendonly: bool,
    /// `loglevel`.
    pub loglevel: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1".into(),
            port: 7379,
            databases: 16,
            maxmemory: 0,
            maxmemory_policy: "noeviction".into(),
            timeout: 0,
            requirepass: String::new(),
            hz: 10,
            proto_max_bulk_len: 512 * 1024 * 1024,
            maxclients: 10000,
            dir: ".".into(),
            appendonly: false,
            loglevel: "notice".into(),
        }
    }
}

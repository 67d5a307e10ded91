//! The engine: databases, connected clients, stats, and dispatch through
//! the command table.

use resp::{Args, Out};

use crate::config::Config;
use crate::keyspace::Keyspace;

/// What the connection must do after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on reading.
    Continue,
    /// Send what was written, then close this connection (`QUIT`).
    Close,
    /// Send what was written, then stop the server (`SHUTDOWN`).
    Shutdown,
    /// Close these other connections (`CLIENT KILL`); the ids may include
    /// this connection's own.
    Kill(Vec<u64>),
}

/// What the server knows of a new connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Peer address, `ip:port`.
    pub addr: String,
    /// Local address, `ip:port`.
    pub laddr: String,
}

/// One connection's state as the engine sees it.
#[derive(Debug)]
pub struct Session {
    /// The client id (`CLIENT ID`), unique for the life of the node.
    pub id: u64,
    /// The selected database.
    pub db: usize,
}

/// A region node's data and the machinery around it.
pub struct Engine {
    config: Config,
    dbs: Vec<Keyspace>,
    next_client_id: u64,
}

impl Engine {
    /// A node with empty databases.
    pub fn new(config: Config) -> Self {
        let dbs = (0..config.databases).map(|_| Keyspace::new()).collect();
        Engine {
            config,
            dbs,
            next_client_id: 1,
        }
    }

    /// The settings in force (`CONFIG SET` changes them).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers a new connection.
    pub fn connect(&mut self, info: ConnInfo) -> Session {
        let _ = info;
        let id = self.next_client_id;
        self.next_client_id += 1;
        Session { id, db: 0 }
    }

    /// Forgets a closed connection.
    pub fn disconnect(&mut self, session: &Session) {
        let _ = session;
    }

    /// Executes one request and writes its reply to `out`.
    pub fn execute(&mut self, session: &mut Session, args: Args<'_>, out: &mut Out) -> Action {
        let _ = (session, args, &self.dbs);
        out.error("ERR not ready");
        Action::Continue
    }

    /// The periodic work (active expiry, stats); call `hz` times a second.
    pub fn cron(&mut self) {}
}

//! One database's raw storage: keys, values, expiry times.
//!
//! This layer knows nothing of commands or of logical expiry: a key whose
//! expiry time has passed is still returned here; the layer above decides
//! whether to hide it (secondary) or delete it and log a `DEL` (primary).
//!
//! Contract of the scan cursor (as Redis's `SCAN`): a key present for the
//! whole of a full iteration (cursor 0 back to 0) is visited at least once;
//! a key may be visited more than once.

use std::collections::HashMap;

/// A value as stored. Strings only for now; the other types join here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A binary-safe string.
    Str(Vec<u8>),
}

/// A borrowed view of a stored value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueRef<'a> {
    /// A binary-safe string.
    Str(&'a [u8]),
}

impl ValueRef<'_> {
    /// An owned copy.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(s.to_vec()),
        }
    }
}

/// An entry as read: its value and expiry (unix milliseconds).
#[derive(Clone, Copy, Debug)]
pub struct EntryRef<'a> {
    /// The value.
    pub value: ValueRef<'a>,
    /// Absolute expiry in unix milliseconds, if the key has one.
    pub expire_at: Option<u64>,
}

/// What a write does to the key's existing expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Keep the key's current expiry (`KEEPTTL`, `SETRANGE`, `APPEND`...).
    Keep,
    /// Set this expiry (`None` removes it).
    Set(Option<u64>),
}

/// One database.
#[derive(Default)]
pub struct Keyspace {
    map: HashMap<Vec<u8>, (Value, Option<u64>)>,
}

impl Keyspace {
    /// An empty database.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys, expired-but-not-yet-removed ones included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there is no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys that carry an expiry.
    pub fn volatile_len(&self) -> usize {
        self.map.values().filter(|(_, e)| e.is_some()).count()
    }

    /// Looks a key up, ignoring expiry.
    pub fn get(&self, key: &[u8]) -> Option<EntryRef<'_>> {
        self.map.get(key).map(|(v, e)| EntryRef {
            value: match v {
                Value::Str(s) => ValueRef::Str(s),
            },
            expire_at: *e,
        })
    }

    /// True when the key exists, ignoring expiry.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// Stores a string, replacing whatever the key held.
    pub fn set_str(&mut self, key: &[u8], val: &[u8], expiry: Expiry) {
        self.set(key, Value::Str(val.to_vec()), expiry)
    }

    /// Stores a value, replacing whatever the key held.
    pub fn set(&mut self, key: &[u8], value: Value, expiry: Expiry) {
        let old = self.map.get(key).and_then(|(_, e)| *e);
        let exp = match expiry {
            Expiry::Keep => old,
            Expiry::Set(e) => e,
        };
        self.map.insert(key.to_vec(), (value, exp));
    }

    /// Removes a key; true when it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        self.map.remove(key).is_some()
    }

    /// Removes a key and returns its value and expiry.
    pub fn take(&mut self, key: &[u8]) -> Option<(Value, Option<u64>)> {
        self.map.remove(key)
    }

    /// Sets or clears a key's expiry; false when the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<u64>) -> bool {
        match self.map.get_mut(key) {
            Some((_, e)) => {
                *e = expire_at;
                true
            }
            None => false,
        }
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// Visits some keys from `cursor` on, about `count` of them, and returns
    /// the cursor to continue from (0 when the iteration is complete).
    pub fn scan(&self, cursor: u64, count: usize, mut f: impl FnMut(&[u8], EntryRef<'_>)) -> u64 {
        let mut keys: Vec<&Vec<u8>> = self.map.keys().collect();
        keys.sort();
        let start = cursor as usize;
        let end = (start + count.max(1)).min(keys.len());
        for k in &keys[start.min(end)..end] {
            f(k, self.get(k).expect("key listed"));
        }
        if end >= keys.len() {
            0
        } else {
            end as u64
        }
    }

    /// A key chosen at random with `pick`, a random u64 source.
    pub fn random_key(&self, mut pick: impl FnMut() -> u64) -> Option<&[u8]> {
        if self.map.is_empty() {
            return None;
        }
        let i = (pick() % self.map.len() as u64) as usize;
        self.map.keys().nth(i).map(Vec::as_slice)
    }

    /// Iterates over every entry (order unspecified).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        self.map.iter().map(|(k, (v, e))| {
            (
                k.as_slice(),
                EntryRef {
                    value: match v {
                        Value::Str(s) => ValueRef::Str(s),
                    },
                    expire_at: *e,
                },
            )
        })
    }

    /// Active expiry: examines about `budget` slots from `cursor`, removes
    /// the keys whose expiry is at or before `now_ms`, handing each removed
    /// key to `on_expired`. Returns the cursor to continue from next time.
    pub fn expire_step(
        &mut self,
        cursor: u64,
        budget: usize,
        now_ms: u64,
        mut on_expired: impl FnMut(&[u8]),
    ) -> u64 {
        let mut dead = Vec::new();
        let next = self.scan(cursor, budget, |k, e| {
            if e.expire_at.is_some_and(|t| t <= now_ms) {
                dead.push(k.to_vec());
            }
        });
        for k in dead {
            self.map.remove(&k);
            on_expired(&k);
        }
        next
    }

    /// Approximate heap bytes used by this database.
    pub fn mem_bytes(&self) -> usize {
        self.map
            .iter()
            .map(|(k, (Value::Str(v), _))| k.len() + v.len() + 64)
            .sum()
    }
}

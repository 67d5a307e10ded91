//! What the aggregate families (hash, list, set, sorted set) share: typed
//! lookups for reads and writes, and editing a value in place under
//! Redis's rule that an emptied aggregate deletes its key.

use crate::engine::Engine;
use crate::error::CmdError;
use crate::keyspace::{Expiry, Value, ValueMut, ValueRef};
use crate::types::{Hash, List, Set, ZSet};

/// An aggregate type as stored in the keyspace.
pub(crate) trait Aggregate: Default {
    /// The value as this type, or `None` for another type.
    fn from_ref(v: ValueRef<'_>) -> Option<&Self>;
    /// The mutable value as this type, or `None` for another type.
    fn from_mut(v: ValueMut<'_>) -> Option<&mut Self>;
    /// Wraps a new value for storing.
    fn into_value(self) -> Value;
    /// True when no element is left.
    fn is_empty(&self) -> bool;
}

macro_rules! aggregate {
    ($ty:ident) => {
        impl Aggregate for $ty {
            fn from_ref(v: ValueRef<'_>) -> Option<&Self> {
                match v {
                    ValueRef::$ty(x) => Some(x),
                    _ => None,
                }
            }
            fn from_mut(v: ValueMut<'_>) -> Option<&mut Self> {
                match v {
                    ValueMut::$ty(x) => Some(x),
                    _ => None,
                }
            }
            fn into_value(self) -> Value {
                Value::$ty(Box::new(self))
            }
            fn is_empty(&self) -> bool {
                $ty::is_empty(self)
            }
        }
    };
}

aggregate!(Hash);
aggregate!(List);
aggregate!(Set);
aggregate!(ZSet);

/// The lookup of a read: counts the hit or miss and hands the value
/// (`None` when absent) to `reply`. A key of another type counts as a hit
/// and gives WRONGTYPE without calling `reply`.
pub(crate) fn read<A: Aggregate, T>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    reply: impl FnOnce(Option<&A>) -> T,
) -> Result<T, CmdError> {
    let (found, res) = match eng.read(db, key) {
        None => (false, Ok(reply(None))),
        Some(e) => match A::from_ref(e.value) {
            Some(a) => (true, Ok(reply(Some(a)))),
            None => (true, Err(CmdError::WrongType)),
        },
    };
    eng.count_lookup(found);
    res
}

/// The lookup of a write: deletes `key` if it has expired (logging the
/// `DEL`), then gives its value (`None`: absent) or WRONGTYPE.
pub(crate) fn prepare<'e, A: Aggregate>(
    eng: &'e mut Engine,
    db: usize,
    key: &[u8],
) -> Result<Option<&'e A>, CmdError> {
    if !eng.prepare_write(db, key) {
        return Ok(None);
    }
    match eng.dbs[db].get(key) {
        None => Ok(None),
        Some(e) => A::from_ref(e.value).map(Some).ok_or(CmdError::WrongType),
    }
}

/// Runs `f` on the value at `key`, creating an empty one first when the
/// key is absent, and deletes the key if `f` left it empty. The caller has
/// checked the key's type with [`prepare`].
pub(crate) fn edit<A: Aggregate, R>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    f: impl FnOnce(&mut A) -> R,
) -> R {
    let mut fresh: Option<A> = None;
    let mut obj = eng.dbs[db].get_obj_mut(key);
    let a = match obj.as_mut().and_then(|o| A::from_mut(o.value())) {
        Some(a) => a,
        None => fresh.insert(A::default()),
    };
    let r = f(a);
    let emptied = a.is_empty();
    drop(obj);
    match fresh {
        Some(a) if !a.is_empty() => {
            eng.dbs[db].set(key, a.into_value(), Expiry::Set(None));
        }
        Some(_) => {}
        None if emptied => {
            eng.dbs[db].remove(key);
        }
        None => {}
    }
    r
}

/// [`prepare`] then [`edit`] in one keyspace lookup when `key` already
/// holds a live value of this type (the common write); otherwise (absent,
/// logically expired, or another type) it takes that two-step path, so
/// expiry and WRONGTYPE behave exactly as there.
pub(crate) fn update<A: Aggregate, R>(
    eng: &mut Engine,
    db: usize,
    key: &[u8],
    f: impl FnOnce(&mut A) -> R,
) -> Result<R, CmdError> {
    let (now, applying) = (eng.now_ms, eng.applying);
    let mut f = Some(f);
    // The guard lives only inside this `match`, so the keyspace is free
    // again for the removal or the slow path below.
    let fast: Option<Result<(R, bool), CmdError>> = match eng.dbs[db].get_obj_mut(key) {
        Some(mut obj) if applying || obj.expire_at().is_none_or(|t| t > now) => {
            match (A::from_mut(obj.value()), f.take()) {
                (Some(a), Some(g)) => {
                    let r = g(a);
                    Some(Ok((r, a.is_empty())))
                }
                (None, _) => Some(Err(CmdError::WrongType)),
                (Some(_), None) => None,
            }
        }
        _ => None,
    };
    match (fast, f) {
        (Some(Ok((r, emptied))), _) => {
            if emptied {
                eng.dbs[db].remove(key);
            }
            Ok(r)
        }
        (Some(Err(e)), _) => Err(e),
        (None, Some(g)) => {
            prepare::<A>(eng, db, key)?;
            Ok(edit(eng, db, key, g))
        }
        // `f` is taken only on the fast path, which then returned above.
        (None, None) => Err(CmdError::err("internal: aggregate update ran twice")),
    }
}

/// The command changed nothing: only a `DEL` of an expired key it made (if
/// any) is journaled, not the request.
pub(crate) fn unchanged(eng: &mut Engine) {
    eng.log_custom();
}

//! The aggregate data types a key can hold besides a string, as plain data
//! structures with no command knowledge: [`Hash`](struct@Hash), [`List`], [`Set`],
//! [`ZSet`].
//!
//! Each type keeps a running count of its heap bytes so the keyspace can
//! account memory in O(1) after every change (`mem_bytes`), and reports
//! `len`/`is_empty` so a command can delete a key whose last element went.

pub mod hash;
pub mod list;
pub mod set;
pub mod zset;

pub use hash::Hash;
pub use list::List;
pub use set::Set;
pub use zset::ZSet;

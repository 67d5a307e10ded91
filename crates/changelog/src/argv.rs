//! [`Argv`]: a command's arguments in one buffer.

use std::fmt;
use std::ops::Index;

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// Most arguments reserved up front from a count the input announces, so
/// a short body claiming a huge count allocates nothing big before the
/// arguments are really there.
const MAX_PREALLOC: usize = 1024;

/// A command's arguments, back to back in one byte buffer with the end of
/// each: two allocations whatever the count, where `Vec<Vec<u8>>` takes one
/// per argument, on the primary's write path and on every secondary's
/// apply path.
///
/// It (de)serializes exactly as a list of byte strings (postcard: a varint
/// count, then a varint length and the bytes of each), the change log's
/// wire format for an op's arguments.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Argv {
    data: Vec<u8>,
    ends: Vec<u32>,
}

impl Argv {
    /// No arguments.
    #[must_use]
    pub const fn new() -> Argv {
        Argv {
            data: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Room for `args` arguments of `bytes` bytes in all.
    #[must_use]
    pub fn with_capacity(args: usize, bytes: usize) -> Argv {
        Argv {
            data: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(args),
        }
    }

    /// Appends an argument.
    ///
    /// # Panics
    ///
    /// When the arguments pass 4 GiB in all (a frame body is bounded far
    /// below that).
    pub fn push(&mut self, arg: &[u8]) {
        self.data.extend_from_slice(arg);
        let end = u32::try_from(self.data.len()).expect("arguments over 4 GiB");
        self.ends.push(end);
    }

    /// How many arguments and bytes it can hold without allocating.
    #[must_use]
    pub fn capacity(&self) -> (usize, usize) {
        (self.ends.capacity(), self.data.capacity())
    }

    /// Removes every argument, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ends.clear();
    }

    /// How many arguments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of all the arguments together.
    #[must_use]
    pub fn bytes_len(&self) -> usize {
        self.data.len()
    }

    /// Argument `i`.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.data[start..end])
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let arg = &self.data[start..end as usize];
            start = end as usize;
            arg
        })
    }
}

impl Index<usize> for Argv {
    type Output = [u8];

    fn index(&self, i: usize) -> &[u8] {
        self.get(i).expect("argument index out of range")
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for Argv {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Argv {
        let mut argv = Argv::new();
        for item in items {
            argv.push(item.as_ref());
        }
        argv
    }
}

impl From<Vec<Vec<u8>>> for Argv {
    fn from(args: Vec<Vec<u8>>) -> Argv {
        args.iter().collect()
    }
}

impl fmt::Debug for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl Serialize for Argv {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Bytes<'a>(&'a [u8]);
        impl Serialize for Bytes<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        serializer.collect_seq(self.iter().map(Bytes))
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Argv, D::Error> {
        deserializer.deserialize_seq(ArgvVisitor)
    }
}

struct ArgvVisitor;

impl<'de> Visitor<'de> for ArgvVisitor {
    type Value = Argv;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of byte strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
        let count = seq.size_hint().unwrap_or(0).min(MAX_PREALLOC);
        let mut argv = Argv::with_capacity(count, 0);
        while seq.next_element_seed(Arg(&mut argv))?.is_some() {}
        Ok(argv)
    }
}

/// One argument, appended to the [`Argv`] being read (no buffer of its
/// own: postcard hands out the bytes borrowed from the frame).
struct Arg<'a>(&'a mut Argv);

impl<'de> DeserializeSeed<'de> for Arg<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for Arg<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        self.0.push(v);
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut bytes = Vec::new();
        while let Some(b) = seq.next_element::<u8>()? {
            bytes.push(b);
        }
        self.0.push(&bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_indexes_and_iterates() {
        let argv: Argv = [&b"SET"[..], b"", b"value"].into_iter().collect();
        assert_eq!(argv.len(), 3);
        assert_eq!(&argv[0], b"SET");
        assert_eq!(argv.get(1), Some(&b""[..]));
        assert_eq!(argv.get(3), None);
        let all: Vec<&[u8]> = argv.iter().collect();
        assert_eq!(all, [&b"SET"[..], b"", b"value"]);
        assert_eq!(format!("{argv:?}"), r#"["SET", "", "value"]"#);
        assert!(Argv::new().is_empty());
    }

    #[test]
    fn same_bytes_as_a_list_of_byte_strings() {
        let lists: [Vec<Vec<u8>>; 3] = [
            vec![],
            vec![b"SET".to_vec(), b"k".to_vec(), vec![0xff; 300]],
            vec![Vec::new(), Vec::new()],
        ];
        for list in lists {
            let argv = Argv::from(list.clone());
            let ours = postcard::to_allocvec(&argv).unwrap();
            let theirs = postcard::to_allocvec(
                &list.iter().map(|a| serde_bytes_like(a)).collect::<Vec<_>>(),
            )
            .unwrap();
            assert_eq!(ours, theirs);
            let back: Argv = postcard::from_bytes(&ours).unwrap();
            assert_eq!(back, argv);
        }
    }

    /// Postcard writes a byte string and a `u8` sequence the same way.
    fn serde_bytes_like(a: &[u8]) -> Vec<u8> {
        a.to_vec()
    }

    #[test]
    fn a_huge_announced_count_allocates_nothing_big() {
        // A varint count of 2^40 and nothing after it.
        let bytes = [0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
        assert!(postcard::from_bytes::<Argv>(&bytes).is_err());
    }
}

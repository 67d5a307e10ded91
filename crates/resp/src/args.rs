//! A request's arguments as slices of one buffer.

use std::ops::Index;

/// The arguments of one request: `args[0]` is the command name.
///
/// The slices borrow from the connection's read buffer (multibulk requests)
/// or from the parser's scratch buffer (inline requests), so building an
/// `Args` copies nothing.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    data: &'a [u8],
    spans: &'a [(usize, usize)],
}

impl<'a> Args<'a> {
    /// Arguments given as `(start, end)` byte ranges of `data`.
    ///
    /// Every span must lie inside `data`; the parser guarantees this.
    pub fn new(data: &'a [u8], spans: &'a [(usize, usize)]) -> Self {
        Args { data, spans }
    }

    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there is no argument at all.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).map(|&(s, e)| &self.data[s..e])
    }

    /// The arguments from `start` on.
    pub fn tail(&self, start: usize) -> Args<'a> {
        Args {
            data: self.data,
            spans: &self.spans[start.min(self.spans.len())..],
        }
    }

    /// Iterates over the arguments in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + DoubleEndedIterator + 'a {
        let data = self.data;
        self.spans.iter().map(move |&(s, e)| &data[s..e])
    }

    /// Copies the arguments out, for keeping a request past its buffer.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl<'a> Index<usize> for Args<'a> {
    type Output = [u8];

    fn index(&self, i: usize) -> &[u8] {
        let (s, e) = self.spans[i];
        &self.data[s..e]
    }
}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// An owned argument vector that hands out [`Args`]; used to build
/// requests in code (queued transactions, replicated ops, tests).
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct ArgvBuf {
    data: Vec<u8>,
    spans: Vec<(usize, usize)>,
}

impl ArgvBuf {
    /// An empty argument vector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds one from anything that yields byte strings.
    ///
    /// `.collect::<ArgvBuf>()` does the same through [`FromIterator`];
    /// this inherent form stays because callers already use it.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I, T>(items: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        let mut buf = Self::new();
        for item in items {
            buf.push(item.as_ref());
        }
        buf
    }

    /// Appends one argument.
    pub fn push(&mut self, arg: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(arg);
        self.spans.push((start, self.data.len()));
    }

    /// Removes every argument, keeping the allocations.
    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Borrows the arguments.
    pub fn args(&self) -> Args<'_> {
        Args::new(&self.data, &self.spans)
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for ArgvBuf {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        ArgvBuf::from_iter(items)
    }
}

impl From<Args<'_>> for ArgvBuf {
    fn from(args: Args<'_>) -> Self {
        ArgvBuf::from_iter(args.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_buf_hands_out_args() {
        let buf: ArgvBuf = ["SET", "k", "v"].into_iter().collect();
        assert_eq!(buf, ArgvBuf::from_iter(["SET", "k", "v"]));
        let args = buf.args();
        assert_eq!(args.len(), 3);
        assert_eq!(&args[0], b"SET");
        assert_eq!(args.get(3), None);
        assert_eq!(args.tail(1).to_vec(), vec![b"k".to_vec(), b"v".to_vec()]);
        assert!(args.tail(9).is_empty());
        assert_eq!(ArgvBuf::from(args), buf);
        assert_eq!(format!("{args:?}"), r#"["SET", "k", "v"]"#);
    }
}

//! Feeds arbitrary bytes to `RequestParser::parse`, consuming request after
//! request the way a connection does, with small limits so the limit paths
//! are reached. Checks the contract: `consumed` is within the buffer and
//! never zero, and every argument lies inside the data it borrows from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use resp::{Limits, RequestParser};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bulk_len: 1024,
        max_multibulk: 64,
        max_inline: 256,
    };
    let mut parser = RequestParser::new(limits);
    let mut rest = data;
    // The same bytes fed in two pieces must give the same first answer.
    let whole = first(&mut parser, rest);
    if let Some(split) = data.first().map(|&b| b as usize % (data.len() + 1)) {
        let early = first(&mut parser, &data[..split]);
        match (&early, &whole) {
            (Ok(None), _) => {}
            (e, w) => assert_eq!(e, w, "a prefix decided differently"),
        }
    }
    loop {
        match parser.parse(rest) {
            Ok(Some((args, consumed))) => {
                assert!(consumed > 0 && consumed <= rest.len());
                for arg in args.iter() {
                    assert!(arg.len() <= rest.len());
                }
                rest = &rest[consumed..];
            }
            Ok(None) | Err(_) => break,
        }
    }
});

/// The first answer for `buf`, owned.
fn first(
    parser: &mut RequestParser,
    buf: &[u8],
) -> Result<Option<(Vec<Vec<u8>>, usize)>, resp::ProtocolError> {
    parser
        .parse(buf)
        .map(|o| o.map(|(args, n)| (args.to_vec(), n)))
}

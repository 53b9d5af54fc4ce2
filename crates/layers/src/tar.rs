//! Encoding of POSIX tar headers: ustar, plus a PAX extended header only for values ustar cannot
//! hold.
//!
//! Invariants: magic "ustar\0", version "00", empty uname/gname, devmajor/devminor zero, numeric
//! fields zero-padded octal ending in NUL, checksum as six octal digits, NUL, space. PAX records
//! are emitted in the fixed order path, linkpath, size, uid, gid, and never carry atime/ctime.
//! PAX headers are named [`PAX_HEADER_NAME`], mode 0o644, owner 0:0 and the entry's mtime.
//! A value moved to PAX leaves a deterministic stand-in in the ustar field: the name with
//! non-ASCII bytes replaced by '_' and cut to 100 bytes, or 0 for numbers.

/// Size of a tar block.
pub const BLOCK: usize = 512;
/// The fixed name of every PAX extended header (no PIDs, no entry names).
pub const PAX_HEADER_NAME: &str = "././@PaxHeader";

const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const MAX_OCTAL_7: u64 = 0o7777777;
/// Largest value of an 11-digit octal field (size, mtime).
pub const MAX_OCTAL_11: u64 = 0o77777777777;

pub const TYPE_FILE: u8 = b'0';
pub const TYPE_HARDLINK: u8 = b'1';
pub const TYPE_SYMLINK: u8 = b'2';
pub const TYPE_DIR: u8 = b'5';
const TYPE_PAX: u8 = b'x';

/// What one entry's header says. `name` is the full tar name (directories end in '/').
pub struct Header<'a> {
    pub name: &'a str,
    pub link: &'a str,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: u64,
}

/// Appends the header blocks of `h` to `out`: a PAX header and its records if needed, then the
/// ustar header. `h.mtime` must be at most [`MAX_OCTAL_11`] (checked by the caller).
pub fn encode(h: &Header<'_>, out: &mut Vec<u8>) {
    let mut records = Vec::new();
    let (name, prefix) = match split_ustar_name(h.name) {
        Some(split) => split,
        None => {
            pax_record(&mut records, "path", h.name);
            (stand_in(h.name), Vec::new())
        }
    };
    let link = if fits_field(h.link, NAME_LEN) {
        h.link.as_bytes().to_vec()
    } else {
        pax_record(&mut records, "linkpath", h.link);
        stand_in(h.link)
    };
    let size = numeric(&mut records, "size", h.size, MAX_OCTAL_11);
    let uid = numeric(&mut records, "uid", u64::from(h.uid), MAX_OCTAL_7);
    let gid = numeric(&mut records, "gid", u64::from(h.gid), MAX_OCTAL_7);

    if !records.is_empty() {
        let pax_len = records.len() as u64;
        let name = PAX_HEADER_NAME.as_bytes();
        out.extend_from_slice(&ustar(
            name,
            &[],
            &[],
            TYPE_PAX,
            0o644,
            0,
            0,
            pax_len,
            h.mtime,
        ));
        out.extend_from_slice(&records);
        pad(out, records.len() as u64);
    }
    let mode = u64::from(h.mode & 0o7777);
    out.extend_from_slice(&ustar(
        &name, &prefix, &link, h.typeflag, mode, uid, gid, size, h.mtime,
    ));
}

/// Appends the zero bytes that bring `len` bytes of data up to a whole block.
pub fn pad(out: &mut Vec<u8>, len: u64) {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        out.resize(out.len() + BLOCK - rem, 0);
    }
}

fn fits_field(s: &str, len: usize) -> bool {
    s.is_ascii() && s.len() <= len
}

/// The (name, prefix) ustar fields for `path`, or None if ustar cannot hold it. Prefers no
/// prefix; otherwise splits at the first '/' that leaves a name of at most 100 bytes.
fn split_ustar_name(path: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    if !path.is_ascii() {
        return None;
    }
    if path.len() <= NAME_LEN {
        return Some((path.as_bytes().to_vec(), Vec::new()));
    }
    let (i, _) = path
        .match_indices('/')
        .find(|(i, _)| path.len() - i - 1 <= NAME_LEN)?;
    let (prefix, name) = (&path[..i], &path[i + 1..]);
    if prefix.len() > PREFIX_LEN || name.is_empty() || name == "/" {
        return None;
    }
    Some((name.as_bytes().to_vec(), prefix.as_bytes().to_vec()))
}

fn stand_in(s: &str) -> Vec<u8> {
    s.bytes()
        .take(NAME_LEN)
        .map(|b| if b.is_ascii() { b } else { b'_' })
        .collect()
}

fn numeric(records: &mut Vec<u8>, key: &str, value: u64, max: u64) -> u64 {
    if value <= max {
        value
    } else {
        pax_record(records, key, &value.to_string());
        0
    }
}

/// Appends one "<len> <key>=<value>\n" record, where <len> counts the whole record.
fn pax_record(records: &mut Vec<u8>, key: &str, value: &str) {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while body + len.to_string().len() != len {
        len = body + len.to_string().len();
    }
    records.extend_from_slice(format!("{len} {key}={value}\n").as_bytes());
}

#[allow(clippy::too_many_arguments)]
fn ustar(
    name: &[u8],
    prefix: &[u8],
    link: &[u8],
    typeflag: u8,
    mode: u64,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    octal(&mut b[100..108], mode);
    octal(&mut b[108..116], uid);
    octal(&mut b[116..124], gid);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    b[345..345 + prefix.len()].copy_from_slice(prefix);
    b[148..156].fill(b' ');
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    octal(&mut b[148..155], sum);
    b[155] = b' ';
    b
}

/// Zero-padded octal in all but the last byte of `field`, then NUL. Callers keep values in range.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str) -> Header<'_> {
        Header {
            name,
            link: "",
            typeflag: TYPE_FILE,
            mode: 0o100755,
            uid: 0,
            gid: 0,
            size: 3,
            mtime: 1,
        }
    }

    #[test]
    fn plain_ustar_header_fields() {
        let mut out = Vec::new();
        encode(
            &Header {
                uid: 1000,
                gid: 50,
                ..header("usr/bin/x")
            },
            &mut out,
        );
        assert_eq!(out.len(), BLOCK);
        assert_eq!(&out[..10], b"usr/bin/x\0");
        assert_eq!(&out[100..108], b"0000755\0", "only permission bits");
        assert_eq!(&out[108..124], b"0001750\x000000062\0");
        assert_eq!(&out[124..148], b"00000000003\x0000000000001\0");
        assert_eq!(&out[257..265], b"ustar\x0000");
        assert_eq!(&out[265..329], [0u8; 64], "empty uname/gname");
        assert_eq!(&out[329..345], b"0000000\x000000000\0");
        let mut check = out.clone();
        check[148..156].fill(b' ');
        let sum: u64 = check.iter().map(|&x| u64::from(x)).sum();
        assert_eq!(&out[148..156], format!("{sum:06o}\0 ").as_bytes());
    }

    #[test]
    fn long_ascii_path_uses_prefix_not_pax() {
        let dir = "d".repeat(120);
        let path = format!("{dir}/file");
        let mut out = Vec::new();
        encode(&header(&path), &mut out);
        assert_eq!(out.len(), BLOCK, "no PAX header");
        assert_eq!(&out[..5], b"file\0");
        assert_eq!(&out[345..345 + 121], format!("{dir}\0").as_bytes());
    }

    #[test]
    fn pax_for_what_ustar_cannot_hold() {
        let path = format!("{}/{}", "p".repeat(10), "n".repeat(101));
        let link = "ü".repeat(3);
        let h = Header {
            link: &link,
            uid: 3_000_000,
            size: MAX_OCTAL_11 + 1,
            ..header(&path)
        };
        let mut out = Vec::new();
        encode(&h, &mut out);
        let records =
            format!("122 path={path}\n19 linkpath={link}\n19 size=8589934592\n15 uid=3000000\n");
        assert_eq!(
            records.len(),
            122 + 19 + 19 + 15,
            "record lengths count themselves"
        );
        assert_eq!(&out[..15], b"././@PaxHeader\0");
        assert_eq!(out[156], b'x');
        assert_eq!(
            &out[124..136],
            format!("{:011o}\0", records.len()).as_bytes()
        );
        assert_eq!(&out[BLOCK..BLOCK + records.len()], records.as_bytes());
        assert_eq!(out.len(), 3 * BLOCK);
        let ustar = &out[2 * BLOCK..];
        assert_eq!(
            &ustar[..100],
            format!("{}/{}", "p".repeat(10), "n".repeat(89)).as_bytes()
        );
        assert_eq!(&ustar[157..164], b"______\0", "non-ASCII stand-in");
        assert_eq!(&ustar[108..116], b"0000000\0");
        assert_eq!(&ustar[124..136], b"00000000000\0");
    }

    #[test]
    fn pax_record_length_crosses_a_digit_boundary() {
        let mut r = Vec::new();
        pax_record(&mut r, "path", &"x".repeat(92)); // 92 + 4 + 3 = 99 body, +3 digits = 102
        assert!(r.starts_with(b"102 path="));
        assert_eq!(r.len(), 102);
    }
}

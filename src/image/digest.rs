//! Content digests (`sha256:…`, `sha512:…`) and a reader that hashes and
//! counts what streams through it.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

/// A validated digest: algorithm plus lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    pub algo: Algorithm,
    pub hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest> {
        let (a, h) = s.split_once(':').ok_or_else(|| Error::msg(format!("invalid digest {s:?}")))?;
        let (algo, len) = match a {
            "sha256" => (Algorithm::Sha256, 64),
            "sha512" => (Algorithm::Sha512, 128),
            _ => crate::bail!("unsupported digest algorithm in {s:?}"),
        };
        if h.len() != len || !h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            crate::bail!("invalid digest {s:?}");
        }
        Ok(Digest { algo, hex: h.to_string() })
    }
    pub fn sha256_of(data: &[u8]) -> Digest {
        Digest { algo: Algorithm::Sha256, hex: to_hex(&Sha256::digest(data)) }
    }
    pub fn of(algo: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algo);
        h.update(data);
        h.finish()
    }
    /// A file-name-safe form: `sha256-<hex>`.
    pub fn key(&self) -> String {
        format!("{}-{}", self.algo_name(), self.hex)
    }
    pub fn algo_name(&self) -> &'static str {
        match self.algo {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algo_name(), self.hex)
    }
}

pub fn to_hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(H[(x >> 4) as usize] as char);
        s.push(H[(x & 15) as usize] as char);
    }
    s
}

pub enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(algo: Algorithm) -> Hasher {
        match algo {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
    pub fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest { algo: Algorithm::Sha256, hex: to_hex(&h.finalize()) },
            Hasher::Sha512(h) => Digest { algo: Algorithm::Sha512, hex: to_hex(&h.finalize()) },
        }
    }
}

/// Hashes and counts everything read through it.
pub struct HashReader<R> {
    inner: R,
    hasher: Hasher,
    count: u64,
    /// Fail as soon as more than this many bytes arrive (descriptor size).
    max: Option<u64>,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R, algo: Algorithm, max: Option<u64>) -> Self {
        HashReader { inner, hasher: Hasher::new(algo), count: 0, max }
    }
    /// Read to the end, then return the digest and size.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finish(), self.count))
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(m) = self.max {
            if self.count > m {
                return Err(io::Error::other(format!("blob is larger than its descriptor size {m}")));
            }
        }
        Ok(n)
    }
}

/// Check a blob's digest and size against a descriptor; the error names the blob.
pub fn check(what: &str, expected: &Digest, expected_size: Option<u64>, got: &Digest, size: u64) -> Result<()> {
    if let Some(s) = expected_size {
        if s != size {
            crate::bail!("{what} {expected}: size mismatch: descriptor says {s} bytes, blob has {size}");
        }
    }
    if got != expected {
        crate::bail!("{what} {expected}: digest mismatch: content hashes to {got}");
    }
    Ok(())
}

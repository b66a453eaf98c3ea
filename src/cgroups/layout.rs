//! Which cgroup hierarchies are mounted where, and the caller's own cgroup in
//! each: parsed once per process from /proc/self/mountinfo and /proc/self/cgroup.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Context, Error, Result};

/// v1 controllers runc knows (and named hierarchies written `name=...`).
const KNOWN: &[&str] = &[
    "cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls", "perf_event",
    "net_prio", "hugetlb", "pids", "rdma", "misc",
];

/// One mounted hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The cgroup that mountpoint shows (field 4 of mountinfo; "/" unless a
    /// cgroup namespace or a bind mount of a sub-cgroup).
    pub root: String,
    /// Its name relative to /sys/fs/cgroup (or the controllers joined by ",").
    pub name: String,
    /// Controllers (empty for cgroup2).
    pub controllers: Vec<String>,
    /// The caller's cgroup in this hierarchy, as /proc/self/cgroup says.
    pub own: String,
}

impl Hierarchy {
    /// Host directory of cgroup `cg` (a path inside the hierarchy).
    pub fn host_path(&self, cg: &str) -> PathBuf {
        let root = self.root.trim_end_matches('/');
        let rel = match cg.strip_prefix(root) {
            Some(r) if root.is_empty() || r.is_empty() || r.starts_with('/') => r,
            _ => cg,
        };
        let comps = super::clean_components(rel);
        let mut p = self.mountpoint.clone();
        p.extend(comps);
        p
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    pub v1: Vec<Hierarchy>,
    pub v2: Option<Hierarchy>,
}

impl Layout {
    pub fn is_v2_only(&self) -> bool {
        self.v1.is_empty() && self.v2.is_some()
    }

    /// Build from the text of mountinfo and /proc/self/cgroup.
    pub fn parse(mountinfo: &str, self_cgroup: &str) -> Layout {
        let own: Vec<(Vec<&str>, &str)> = self_cgroup
            .lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ':');
                let _id = it.next()?;
                let ctrls = it.next()?;
                let path = it.next()?;
                let mut c: Vec<&str> = ctrls.split(',').filter(|s| !s.is_empty()).collect();
                c.sort_unstable();
                Some((c, path))
            })
            .collect();
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else { continue };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let (root, mountpoint) = (unescape(pre[3]), PathBuf::from(unescape(pre[4])));
            match post[0] {
                "cgroup2" => {
                    if layout.v2.is_some() {
                        continue;
                    }
                    let own = own.iter().find(|(c, _)| c.is_empty()).map(|(_, p)| p.to_string());
                    layout.v2 = Some(Hierarchy {
                        name: rel_name(&mountpoint).unwrap_or_default(),
                        mountpoint,
                        root,
                        controllers: Vec::new(),
                        own: own.unwrap_or_else(|| "/".into()),
                    });
                }
                "cgroup" => {
                    let mut ctrls: Vec<String> = post[2]
                        .split(',')
                        .filter(|o| KNOWN.contains(o) || o.starts_with("name="))
                        .map(str::to_string)
                        .collect();
                    ctrls.sort_unstable();
                    if ctrls.is_empty() || layout.v1.iter().any(|h| h.controllers == ctrls) {
                        continue;
                    }
                    // Named hierarchies other than name=systemd are not ours (runc).
                    if ctrls.iter().all(|c| c.starts_with("name=")) && ctrls != ["name=systemd"] {
                        continue;
                    }
                    let own = own
                        .iter()
                        .find(|(c, _)| c.len() == ctrls.len() && c.iter().zip(&ctrls).all(|(a, b)| a == b))
                        .map(|(_, p)| p.to_string());
                    let name = rel_name(&mountpoint).unwrap_or_else(|| ctrls.join(","));
                    layout.v1.push(Hierarchy { mountpoint, root, name, controllers: ctrls, own: own.unwrap_or_else(|| "/".into()) });
                }
                _ => {}
            }
        }
        layout
    }

    /// Read this process's layout now (uncached).
    pub fn read() -> Result<Layout> {
        let cg = crate::sys::read_small_file(std::path::Path::new("/proc/self/cgroup")).ctx("read /proc/self/cgroup")?;
        if let Some(l) = Layout::unified(&cg) {
            return Ok(l);
        }
        let mi = crate::sys::read_small_file(std::path::Path::new("/proc/self/mountinfo")).ctx("read /proc/self/mountinfo")?;
        Ok(Layout::parse(&mi, &cg))
    }

    /// The common case without mountinfo (slow to generate): a cgroup2 at
    /// /sys/fs/cgroup (statfs, as runc decides it) that shows our own
    /// cgroup where /proc/self/cgroup says. A mount of a sub-cgroup (its
    /// mountinfo root is not "/") fails the second test and is read from
    /// mountinfo.
    fn unified(self_cgroup: &str) -> Option<Layout> {
        const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
        let mountpoint = Path::new("/sys/fs/cgroup");
        // SAFETY: statfs is plain data; valid C string.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) } != 0 || st.f_type as i64 != CGROUP2_SUPER_MAGIC {
            return None;
        }
        let own = self_cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
        let h = Hierarchy { mountpoint: mountpoint.into(), root: "/".into(), name: String::new(), controllers: Vec::new(), own: own.into() };
        h.host_path(own).is_dir().then(|| Layout { v1: Vec::new(), v2: Some(h) })
    }
}

/// The layout of this process, read once.
pub fn get() -> Result<&'static Layout> {
    static L: OnceLock<std::result::Result<Layout, String>> = OnceLock::new();
    L.get_or_init(|| Layout::read().map_err(|e| e.to_string())).as_ref().map_err(|e| Error::msg(e.clone()))
}

fn rel_name(mountpoint: &Path) -> Option<String> {
    let r = mountpoint.strip_prefix("/sys/fs/cgroup").ok()?;
    Some(r.to_string_lossy().into_owned())
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
42 31 0:39 / /sys/fs/cgroup/foo rw,relatime - cgroup cgroup rw,name=foo
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const CG: &str = "9:name=systemd:/
4:memory:/process_api/bb
2:cpu,cpuacct:/x
0::/u
";

    #[test]
    fn parse_hybrid() {
        let l = Layout::parse(MI, CG);
        let names: Vec<&str> = l.v1.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu", "cpu,cpuacct", "memory", "systemd"]);
        assert_eq!(l.v1[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(l.v1[1].own, "/x");
        assert_eq!(l.v1[2].own, "/process_api/bb");
        assert_eq!(l.v1[3].controllers, ["name=systemd"]);
        let u = l.v2.as_ref().unwrap();
        assert_eq!((u.name.as_str(), u.own.as_str()), ("unified", "/u"));
        assert!(!l.is_v2_only());
    }

    #[test]
    fn host_path_with_mount_root() {
        let h = Hierarchy {
            mountpoint: "/sys/fs/cgroup".into(),
            root: "/a/b".into(),
            name: String::new(),
            controllers: vec![],
            own: "/a/b/c".into(),
        };
        assert_eq!(h.host_path("/a/b/c/d"), PathBuf::from("/sys/fs/cgroup/c/d"));
        assert_eq!(h.host_path("/a/bc"), PathBuf::from("/sys/fs/cgroup/a/bc"));
        assert_eq!(h.host_path("/../../x"), PathBuf::from("/sys/fs/cgroup/x"));
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}

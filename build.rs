//! Links the stele binary with its functions in the order of link-order.txt
//! (scripts/gen-link-order.sh writes it: the functions `stele run` executes,
//! runtime first, then the container init, then the other commands'), when
//! the linker is lld (.cargo/config.toml). The code a container start runs is
//! then a few contiguous 64 KiB fault-around windows instead of being spread
//! over the whole text: peak RSS, docs/performance.md. Names that no longer
//! exist are ignored, so a stale file costs memory, never a failed build.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link-order.txt");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("link-order.txt");
    let lld = std::env::var("RUSTC_LINKER").is_ok_and(|l| l.contains("lld"));
    if lld && order.is_file() {
        println!("cargo:rustc-link-arg-bin=stele=--symbol-ordering-file={}", order.display());
        println!("cargo:rustc-link-arg-bin=stele=--no-warn-symbol-ordering");
    }
}

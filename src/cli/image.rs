//! `stele image …`, `stele bundle create`, `stele verify --bundle`.

use std::path::Path;

use super::args::{BundleCreate, ImageCmd};

use stele::image::bundle::{create_bundle, BundleOptions};
use stele::image::{ImportOptions, Limits, Report, Store};

fn print_report(rep: &Report) -> i32 {
    for (dir, d) in &rep.drift {
        println!("{}: {d}", dir.display());
    }
    if rep.ok() {
        println!("ok: {} layer tree(s) match", rep.checked.len());
        0
    } else {
        eprintln!("drift: {} path(s) changed", rep.drift.len());
        1
    }
}

pub fn run_image(cmd: ImageCmd, store: &Path) -> stele::Result<i32> {
    let store = Store::open(store)?;
    match cmd {
        ImageCmd::Import { reference, name, allow_devices } => {
            let opts = ImportOptions { name, limits: Limits { allow_devices, ..Default::default() } };
            let r = store.import(&reference, &opts)?;
            println!("{} {}", r.name, r.manifest_digest);
        }
        ImageCmd::Ls => {
            println!("{:<40} {:<20} LAYERS", "NAME", "DIGEST");
            for r in store.list()? {
                let short = r.manifest_digest.split(':').nth(1).unwrap_or("").get(..12).unwrap_or("");
                println!("{:<40} {:<20} {}", r.name, format!("sha256:{short}"), r.layers.len());
            }
        }
        ImageCmd::Inspect { name } => {
            let r = store.get(&name)?;
            let mut v = serde_json::to_value(&r).map_err(|e| stele::Error::msg(e.to_string()))?;
            let dirs: Vec<String> = r
                .layers
                .iter()
                .map(|l| store.layer_dir(&l.diff_id).map(|p| p.display().to_string()))
                .collect::<stele::Result<_>>()?;
            v["layer_dirs"] = serde_json::json!(dirs);
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        ImageCmd::Rm { name } => {
            store.remove(&name)?;
            println!("{name}");
        }
        ImageCmd::Gc => {
            let g = store.gc()?;
            for l in &g.removed_layers {
                println!("removed layer {l}");
            }
            for c in &g.removed_configs {
                println!("removed config {c}");
            }
        }
        ImageCmd::Verify { name } => return Ok(print_report(&store.verify(&name)?)),
    }
    Ok(0)
}

pub fn run_bundle_create(args: BundleCreate, store: &Path) -> stele::Result<i32> {
    let store = Store::open(store)?;
    let img = create_bundle(&store, &args.image, &args.dir, &BundleOptions { flatten: args.flatten })?;
    println!("{} {}", args.dir.display(), img.manifest_digest);
    Ok(0)
}

pub fn run_verify_bundle(bundle: &Path) -> stele::Result<i32> {
    Ok(print_report(&stele::image::verify_bundle(bundle)?))
}

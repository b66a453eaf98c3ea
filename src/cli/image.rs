//! `stele image …`, `stele bundle create`, `stele verify --bundle`.

use std::path::{Path, PathBuf};

use stele::image::bundle::{create_bundle, BundleOptions};
use stele::image::{ImportOptions, Limits, Report, Store};

#[derive(clap::Subcommand, Debug)]
pub enum ImageCmd {
    /// Import an image: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG], docker-archive:FILE
    Import {
        reference: String,
        /// Name to store the image under (default: the source's own name, else REF)
        #[arg(long)]
        name: Option<String>,
        /// Allow block/character device nodes in layers
        #[arg(long)]
        allow_devices: bool,
    },
    /// List stored images
    Ls,
    /// Show a stored image's record (JSON)
    Inspect { name: String },
    /// Remove an image record (layers go with `image gc`)
    Rm { name: String },
    /// Remove layers and configs no image refers to
    Gc,
    /// Recompute every layer's tree digest and report drifted paths
    Verify { name: String },
}

#[derive(clap::Args, Debug)]
pub struct BundleCreate {
    /// Stored image name, or a reference to import first
    #[arg(long)]
    pub image: String,
    /// Write a plain merged rootfs instead of referring to the store layers
    #[arg(long)]
    pub flatten: bool,
    /// Bundle directory (created)
    pub dir: PathBuf,
}

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

pub const FLAT_TREE_FILE: &str = "rootfs.tree";

//! OCI images: verified import, layer store, bundles (see issue 5).
